"""The process-wide client that ``Task.delay`` in the worker's task API uses."""

from __future__ import annotations

import threading
from contextlib import suppress

from amqptool.client.client import Client
from amqptool.errors import AmqpToolError

__all__ = ["default_client"]

_default_lock = threading.Lock()
_default: Client | None = None


def default_client() -> Client:
    """The process-wide client, from ``$AMQP_URL`` / ``$CELERY_BROKER_URL`` (made on first use).

    It survives forks (a child gets its own connection and result queue) and is closed at
    interpreter exit.
    """
    global _default
    with _default_lock:
        if _default is None:
            import atexit

            _default = Client()
            atexit.register(_close_default)
        return _default


def _close_default() -> None:
    client = _default
    if client is not None:
        with suppress(AmqpToolError):
            client.close()
