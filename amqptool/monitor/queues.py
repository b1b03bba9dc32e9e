"""Queue depths without the management plugin: a passive ``queue.declare`` per queue.

AMQP's ``queue.declare-ok`` gives the number of messages *ready* and of *consumers*; messages
delivered but not yet acknowledged (unacked) are only visible through the management HTTP API,
so the monitor shows them as unknown and says so, rather than guessing.

Which queues: those given with ``-Q``, else the ones workers report through the
``active_queues`` control command (:func:`queues_from_replies`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amqptool.errors import AmqpToolError, ChannelClosedError
from amqptool.settings import BrokerSettings

__all__ = ["UNACKED_NOTE", "QueueDepth", "QueueProbe", "queues_from_replies"]

UNACKED_NOTE = "unacked: n/a (needs the management API)"


@dataclass(frozen=True)
class QueueDepth:
    name: str
    ready: int | None = None
    consumers: int | None = None
    error: str | None = None  # e.g. "not found"

    @property
    def cells(self) -> tuple[str, str, str, str]:
        if self.error:
            return (self.name, "-", "-", self.error)
        return (self.name, str(self.ready), "n/a", str(self.consumers))


def queues_from_replies(replies: dict[str, Any]) -> list[str]:
    """Queue names from ``active_queues`` replies ``{node: [{"name": ...}, ...]}``, sorted."""
    names: set[str] = set()
    for reply in replies.values():
        if not isinstance(reply, list):
            continue
        for queue in reply:
            if isinstance(queue, dict) and isinstance(queue.get("name"), str):
                names.add(queue["name"])
    return sorted(names)


class QueueProbe:
    """Passively declares queues on a connection of its own (use it from one thread)."""

    def __init__(self, settings: BrokerSettings, *, name: str = "amqptool monitor queues") -> None:
        from amqptool.transport import Connection

        self._conn = Connection(settings, name=name)
        self._channel: Any = None

    def _open(self) -> Any:
        if not self._conn.is_open:
            self._conn.connect()
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._conn.channel()
        return self._channel

    def probe(self, names: Iterable[str]) -> list[QueueDepth]:
        """Depth of each queue; a missing queue is reported, not raised.

        Raises :class:`ConnectionFailedError` when the broker cannot be reached.
        """
        out: list[QueueDepth] = []
        for name in names:
            channel = self._open()
            try:
                info = channel.queue_declare(name, passive=True)
            except ChannelClosedError as exc:
                self._channel = None  # the broker closed the channel (404): open a new one
                error = "not found" if exc.reply_code == 404 else f"error {exc.reply_code}"
                out.append(QueueDepth(name, error=error))
                continue
            except AmqpToolError as exc:
                self._channel = None
                if not self._conn.is_open:
                    raise
                out.append(QueueDepth(name, error=exc.user_line()[:40]))
                continue
            out.append(QueueDepth(name, info.message_count, info.consumer_count))
        return out

    def close(self) -> None:
        self._conn.close()
