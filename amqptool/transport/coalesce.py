"""Send the frames queued since the last write in one ``send()`` call.

pika queues every frame (a published message is three: method, header, body) as its own
buffer and its transport then calls ``socket.send()`` once per buffer. A worker that publishes
a result, a batch of events and an ack per loop iteration therefore makes several system calls
per task. :func:`install` wraps pika's ``_AsyncTransportBase._produce`` so that, when more than
one buffer is waiting, they are joined first (the byte count is unchanged, partial sends work
as before). Opt-in (the worker installs it); behaviour on the wire is identical.
"""

from __future__ import annotations

from typing import Any

from pika.adapters.utils import io_services_utils

__all__ = ["install"]

_MAX_JOIN = 1 << 20  # bytes: beyond this, leave the rest for the next round
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    base = io_services_utils._AsyncTransportBase
    original = base._produce

    def _produce(self: Any) -> None:
        buffers = self._tx_buffers
        if len(buffers) > 1:
            joined: list[bytes] = []
            size = 0
            while buffers and size < _MAX_JOIN:
                chunk = buffers.popleft()
                joined.append(chunk)
                size += len(chunk)
            buffers.appendleft(b"".join(joined))
        original(self)

    base._produce = _produce
    _installed = True
