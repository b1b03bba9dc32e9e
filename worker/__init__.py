"""amqptool's Celery-compatible worker."""

__all__: list[str] = []
