"""Alembic environment of the station database (run by :func:`agent.station.db.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from agent.station.db import Base

target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or ""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
