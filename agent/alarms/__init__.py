"""Alarm rules (pure, time-driven) and the IEC 60601-1-8 alarm lifecycle engine."""

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.alarms.rules import EcgRules

__all__ = ["AlarmEngine", "ConditionSpec", "EcgRules", "Finding"]
