"""The client tasks use to send tasks from inside a worker.

A task that calls ``other.delay()`` while the worker runs it sends through the worker's own
broker (not ``$AMQP_URL``), to the worker's first queue unless told otherwise (Celery's
``task_default_queue`` of the worker's app), and its result handle reads the worker's result
backend. One client per process (made again after a fork); outside a worker nothing is set and
tasks use :func:`amqptool.client.default_client`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amqptool.settings import BrokerSettings

__all__ = ["client", "configure", "default_queue"]

_lock = threading.Lock()
_config: tuple[BrokerSettings, str, str | None] | None = None
_routing: Mapping[str, Any] | None = None  # Celery's routing settings (the worker's config)
_client: tuple[int, Any] | None = None


def configure(
    settings: BrokerSettings,
    queue: str,
    backend: str | None,
    *,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Set by the worker at start: its broker, first queue and result backend, and the
    settings it was configured with (then ``task_routes``/``task_default_queue`` decide where a
    task sent from a task goes, as under Celery)."""
    global _config, _client, _routing
    with _lock:
        _config = (settings, queue, backend)
        _routing = config
        _client = None


def default_queue() -> str | None:
    """The worker's first queue, when no configuration routes (else None: the router's)."""
    return _config[1] if _config is not None and _routing is None else None


def client() -> Any:
    """The worker's sending client (None outside a worker)."""
    global _client
    with _lock:
        if _config is None:
            return None
        if _client is None or _client[0] != os.getpid():
            from amqptool.client import Client

            settings, _, backend = _config
            _client = (os.getpid(), Client(settings, backend=backend, config=_routing))
        return _client[1]
