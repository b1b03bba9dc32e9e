"""amqptool shell."""

__all__: list[str] = []
