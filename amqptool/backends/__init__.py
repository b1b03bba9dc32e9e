"""Result backends: where task results are stored so any process can read them by id.

- ``rpc://``: results are messages to the caller's reply queue (the worker and client do this
  over the broker; nothing is stored).
- ``redis://`` / ``rediss://``: :class:`~amqptool.backends.redis.RedisBackend`.
- ``db+postgresql://``, ``db+mysql://``, ``db+sqlite:///``:
  :class:`~amqptool.backends.sql.SqlBackend`.

The layout and encodings are Celery's (``docs/results.md``), so Celery clients and workers read
what ours write and the other way round. Drivers are optional extras imported on first use.
"""

from amqptool.backends.base import Backend, ChordPart, retrying
from amqptool.backends.meta import (
    Codec,
    group_key,
    group_tuple,
    result_document,
    task_key,
    task_tuple,
)
from amqptool.backends.urls import backend_from_url, is_rpc, redact

__all__ = [
    "Backend",
    "ChordPart",
    "Codec",
    "backend_from_url",
    "group_key",
    "group_tuple",
    "is_rpc",
    "redact",
    "result_document",
    "retrying",
    "task_key",
    "task_tuple",
]
