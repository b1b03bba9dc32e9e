"""amqptool control."""

__all__: list[str] = []
