"""Evaluation of the agent's own output against PhysioNet references."""
