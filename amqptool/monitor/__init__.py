"""amqptool monitor."""

__all__: list[str] = []
