"""Publishing: the MQTT publisher with its SQLite outbox, and a subscriber for consumers.

The only package that imports paho-mqtt (STYLE.md, "Architecture").
"""

from agent.publish.mqtt import MqttPublisher
from agent.publish.outbox import Outbox
from agent.publish.subscriber import MqttSubscriber

__all__ = ["MqttPublisher", "MqttSubscriber", "Outbox"]
