"""The one home of pika in amqptool: connect, declare, publish, get, consume, errors."""

from amqptool.transport.confirms import ConfirmedPublisher, Pending
from amqptool.transport.connection import Channel, Connection, QueueInfo
from amqptool.transport.errors import UnroutableError

__all__ = ["Channel", "ConfirmedPublisher", "Connection", "Pending", "QueueInfo", "UnroutableError"]
