"""Results read from a stored backend (Redis, SQL) instead of the ``rpc://`` reply queue.

:class:`BackendSource` is the :class:`~amqptool.client.result.ResultSource` of a client made
with ``backend="redis://..."`` (or ``db+...``): any process can read any task's result by id,
whoever sent it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from amqptool.client.result import ResultMeta

if TYPE_CHECKING:
    from amqptool.backends import Backend

__all__ = ["BackendSource"]


class BackendSource:
    """Reads states from a :class:`~amqptool.backends.Backend` (polled, or Redis pub/sub)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def wait_for(self, task_id: str, timeout: float | None) -> ResultMeta:
        return ResultMeta.from_body(self.backend.wait_for(task_id, timeout), fallback_id=task_id)

    def peek(self, task_id: str) -> ResultMeta | None:
        doc = self.backend.get(task_id)
        if doc.get("status") == "PENDING" and doc.get("result") is None:
            return None
        return ResultMeta.from_body(doc, fallback_id=task_id)

    def forget(self, task_id: str) -> None:
        self.backend.forget(task_id)

    def save_group(self, group_id: str, members: Sequence[Any]) -> None:
        self.backend.save_group(group_id, members)

    def restore_group(self, group_id: str) -> list[Any] | None:
        return self.backend.restore_group(group_id)

    def close(self) -> None:
        self.backend.close()
