"""The pure wire codec: task messages, results, events, control, serializers.

Imports no pika, textual or prompt_toolkit.
"""

from amqptool.codec.envelope import Envelope, Properties

__all__ = ["Envelope", "Properties"]
