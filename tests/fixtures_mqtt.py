"""MQTT broker fixture (placeholder until the publisher work lands)."""
