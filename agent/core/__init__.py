"""The agent's synchronous core: front ends → one timeline → consumers → one alarm engine.

Modules: :mod:`~agent.core.items` (timeline items and their order), :mod:`~agent.core.frontends`
(waveform and RR-only front ends), :mod:`~agent.core.finaliser` (every beat classified once),
:mod:`~agent.core.consumers` (the consumer protocol and the detectors behind it),
:mod:`~agent.core.monitor` and :mod:`~agent.core.streams` (the core of one stream),
:mod:`~agent.core.driver` (the one driver of ``bedside run`` and ``bedside analyze``).
See ``docs/architecture.md``.
"""
