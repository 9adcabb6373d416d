"""Tests of agent.publish."""
