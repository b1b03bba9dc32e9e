"""When to stop waiting for control replies: a pure rule with explicit time.

The rule (``amqptool control`` and :meth:`ControlClient.call`):

1. The **first** reply is awaited for the whole ``timeout``.
2. When a ``limit`` is known (``--limit N``, or the number of ``-d`` destinations), the call
   returns **the moment** ``limit`` replies are in. While fewer are in, each wait for the next
   reply may last up to ``timeout`` (Celery's per-reply rule), so a named node gets the same
   chance Celery gives it.
3. Without a limit (a broadcast, or ``--pattern``), nobody knows how many nodes exist, so after
   each reply the call waits only an **idle gap** for the next one and then returns. The gap is
   ``max(0.25 s, timeout / 4)``, never more than ``timeout`` (1.0 s -> 0.25 s, 5 s -> 1.25 s,
   0.1 s -> 0.1 s). Pass ``idle=timeout`` to get Celery's behaviour (wait a full timeout after
   every reply).

Celery, by contrast, always waits ``timeout`` after the last reply even when every expected
node has answered (docs/protocol.md §4.4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from amqptool.codec.control import decode_reply
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import DEFAULT_ACCEPT
from amqptool.errors import DecodeError
from amqptool.textsafe import one_line

__all__ = [
    "BROADCAST_IDLE_FRACTION",
    "BROADCAST_IDLE_MIN",
    "MAX_MALFORMED",
    "ReplyCollector",
    "broadcast_idle_gap",
    "reply_problem",
]

log = logging.getLogger("amqptool.control")

BROADCAST_IDLE_MIN = 0.25
BROADCAST_IDLE_FRACTION = 0.25


def broadcast_idle_gap(timeout: float) -> float:
    """How long a broadcast waits for one more reply after the last one."""
    return min(timeout, max(BROADCAST_IDLE_MIN, timeout * BROADCAST_IDLE_FRACTION))


class ReplyCollector:
    """Collects the replies of one request (one ticket) and says how long to wait next."""

    def __init__(
        self,
        ticket: str,
        *,
        timeout: float,
        started: float,
        limit: int | None = None,
        idle: float | None = None,
        accept: Collection[str] = DEFAULT_ACCEPT,
        on_reply: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.ticket = ticket
        self.timeout = timeout
        self.started = started
        self.limit = limit
        self.idle = idle
        self.accept = accept
        self.on_reply = on_reply
        self.replies: dict[str, Any] = {}
        self.malformed: list[str] = []  # replies shown as such and not counted as nodes
        self.verify: Callable[[Envelope], str] | None = None  # "" or why it is refused
        self.count = 0
        self.last_reply: float | None = None
        self.clocks: list[int] = []

    @property
    def gap(self) -> float:
        """The wait allowed after a reply for the next one."""
        if self.idle is not None:
            return max(0.0, self.idle)
        if self.limit is not None:
            return self.timeout
        return broadcast_idle_gap(self.timeout)

    @property
    def complete(self) -> bool:
        return self.limit is not None and self.count >= self.limit

    def next_wait(self, now: float) -> float | None:
        """Seconds to wait for the next reply, or None when the call is over."""
        if self.complete:
            return None
        if self.last_reply is None:
            deadline = self.started + self.timeout
        else:
            deadline = self.last_reply + self.gap
        remaining = deadline - now
        return remaining if remaining > 0 else None

    def offer(self, env: Envelope, now: float, *, wall: float | None = None) -> bool:
        """Take a reply message if it belongs to this request; True when taken."""
        headers = env.properties.headers or {}
        ticket = headers.get("ticket")
        if ticket is not None and str(ticket) != self.ticket:
            log.debug("dropping a reply for another request (ticket %s)", ticket)
            return False
        expires = headers.get("expires")
        wall_now = time.time() if wall is None else wall
        expired = isinstance(expires, int | float) and 0 < expires < wall_now
        if expired and not isinstance(expires, bool):
            log.debug("dropping an expired reply")
            return False
        refused = self.verify(env) if self.verify is not None else ""
        if refused:
            return self._malformed(f"{refused}: {_snippet(env.body)}")
        try:
            body = decode_reply(env, accept=self.accept)
        except DecodeError as exc:
            return self._malformed(f"does not decode ({exc}): {_snippet(env.body)}")
        why = reply_problem(body)
        if why:
            return self._malformed(f"{why}: {_snippet(env.body)}")
        clock = headers.get("clock")
        if isinstance(clock, int) and not isinstance(clock, bool):
            self.clocks.append(clock)
        for node, reply in body.items():
            if node in self.replies:
                log.warning("duplicate node name in control replies: %s", node)
            self.replies[node] = reply
            if self.on_reply is not None:
                self.on_reply(node, reply)
        self.count += 1
        self.last_reply = now
        return True

    def _malformed(self, what: str) -> bool:
        log.warning("a control reply that is not a well-formed reply (not counted): %s", what)
        if len(self.malformed) < MAX_MALFORMED:
            self.malformed.append(what)
        return False  # kept aside in ``malformed``, not taken as a reply


MAX_MALFORMED = 100
MAX_NODE_NAME = 255
_SNIPPET = 120


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace")
    return one_line(text) + ("..." if len(body) > _SNIPPET else "")


def reply_problem(body: dict[str, Any]) -> str:
    """Why a decoded reply is not ``{node: reply}`` from one node ("" when it is)."""
    if len(body) != 1:
        return f"names {len(body)} nodes, not one"
    node = next(iter(body))
    if not node or len(node) > MAX_NODE_NAME:
        return f"node name has {len(node)} characters"
    if any(not c.isprintable() or c.isspace() for c in node):
        return f"node name {one_line(node)!r} holds blanks or control characters"
    return ""
