"""amqptool: AMQP shell, live monitor, control CLI and Celery-compatible worker."""

__version__ = "0.1.0"
__all__ = ["__version__"]
