"""The web central station (``bedside station``): every bed at a glance, in a browser.

Modules: :mod:`~agent.station.config` (settings: broker, TLS, database, retention, HTTP),
:mod:`~agent.station.db` (SQLAlchemy tables, Alembic migrations, retention),
:mod:`~agent.station.users` (station users, argon2 password hashes, sessions),
:mod:`~agent.station.ward` (the live ward state, pure), :mod:`~agent.station.ingest` (MQTT v5
subscriber with shared subscriptions, database writer), :mod:`~agent.station.app` (FastAPI
routes and the WebSocket), :mod:`~agent.station.cli` (``bedside station`` arguments).
See ``docs/station.md``.
"""
