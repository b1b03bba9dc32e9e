"""The process-wide client that ``Task.delay`` in the worker's task API uses."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from amqptool.client.client import Client
from amqptool.errors import AmqpToolError
from amqptool.settings import BrokerSettings

__all__ = ["default_client", "set_defaults"]

_default_lock = threading.Lock()
_default: Client | None = None
_settings: BrokerSettings | None = None
_config: Mapping[str, Any] | None = None


def set_defaults(settings: BrokerSettings | None, config: Mapping[str, Any] | None) -> None:
    """The broker and the routing settings of the default client (the worker sets them, so a
    task calling a task publishes where the worker's configuration routes it)."""
    global _settings, _config, _default
    with _default_lock:
        _settings, _config = settings, config
        _default = None


def default_client() -> Client:
    """The process-wide client (made on first use): the worker's broker and routing settings
    in a worker, else ``$AMQP_URL`` / ``$CELERY_BROKER_URL`` and Celery's default routing.

    It survives forks (a child gets its own connection and result queue) and is closed at
    interpreter exit.
    """
    global _default
    with _default_lock:
        if _default is None:
            import atexit

            _default = Client(_settings, config=_config)
            atexit.register(_close_default)
        return _default


def _close_default() -> None:
    client = _default
    if client is not None:
        with suppress(AmqpToolError):
            client.close()
