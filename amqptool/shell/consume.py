"""``basic.consume``: a bounded consume (tail) of one queue.

The consumer gets a prefetch window of ``count`` so the broker never hands over more than
asked; messages are settled when the consume ends (``ack``/``no_ack``: acknowledged, ``peek``:
requeued, ``manual``: left unacknowledged for ``basic.ack``). It stops after ``count``
messages, after ``timeout`` seconds without one, or on Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from amqptool.codec.envelope import Envelope
from amqptool.shell.core.messages import MessageView, view_message
from amqptool.shell.core.outcome import Consumed
from amqptool.shell.core.parser import ParsedCommand

if TYPE_CHECKING:
    from amqptool.shell.core.ports import ChannelLike
    from amqptool.shell.runner import Notify, OnMessage, Runner

__all__ = ["consume", "wait_for"]

_POLL = 0.2
_CLEANUP = 2.0


def wait_for(r: Runner, enough: Callable[[], bool], deadline: Callable[[], float]) -> str:
    """Deliver messages until ``enough()`` ("count"), ``deadline()`` passes ("timeout") or
    Ctrl-C ("interrupted"); the callbacks move the deadline on as messages arrive."""
    try:
        while not enough():
            remaining = deadline() - time.monotonic()
            if remaining <= 0:
                return "timeout"
            r.connection.process_events(min(remaining, _POLL))
            r.watchdog.alive()  # waiting on our own timeout is not the broker being stuck
    except KeyboardInterrupt:
        r.watchdog.alive(_CLEANUP)  # settling must not hang on a connection that went quiet
        return "interrupted"
    return "count"


def consume(
    r: Runner, ch: ChannelLike, c: ParsedCommand, on_message: OnMessage, warn: Notify
) -> Consumed:
    queue: str = c.values["queue"]
    count: int = c.values["count"]
    timeout: float = c.values["timeout"]
    mode: str = c.values["mode"]
    views: list[MessageView] = []
    tags: list[int] = []
    deadline = time.monotonic() + timeout

    def on_envelope(env: Envelope) -> None:
        nonlocal deadline
        view = view_message(env)
        views.append(view)
        r.names.add_exchange(env.exchange)
        if env.delivery_tag is not None:
            tags.append(env.delivery_tag)
        deadline = time.monotonic() + timeout
        on_message(view)

    ch.qos(count, global_qos=False)  # taken per consumer when it starts
    consumer_tag = ch.consume(queue, on_envelope, arguments=c.arguments)
    ch.qos(r.qos_state[False], global_qos=False)  # the user's setting again, for later ones
    reason = wait_for(r, lambda: len(views) >= count, lambda: deadline)
    ch.cancel(consumer_tag)
    for tag in tags:
        if mode in ("ack", "no_ack"):
            ch.ack(tag)
        elif mode == "peek":
            ch.nack(tag, requeue=True)
        else:
            r.unacked.add(tag)
    r.sync(ch)
    if mode == "peek" and any("x-delivery-count" in v.properties.get("headers", {}) for v in views):
        warn(  # the broker counts deliveries of this queue (quorum): say so even without the API
            "these messages carry x-delivery-count: each peek's requeue counts as a delivery "
            "against the queue's delivery limit"
        )
    return Consumed(tuple(views), mode, reason)
