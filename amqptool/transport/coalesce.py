"""Send the frames queued since the last write in one ``send()`` call, on one connection.

pika queues every frame (a published message is three: method, header, body) as its own
buffer and its transport then calls ``socket.send()`` once per buffer. A worker that publishes
a result, a batch of events and an ack per loop iteration therefore makes several system calls
per task. :func:`coalesce_sends` wraps the ``_produce`` of one connection's transport (the
instance, not pika's class: other connections in the process are untouched) so that, when more
than one buffer is waiting, they are joined first (the byte count is unchanged, partial sends
work as before). Opt-in (the worker's link and the client use it, again after each
reconnect); behaviour on the wire is identical.

:func:`send_now` writes what is queued at once, without a turn of pika's I/O loop (which would
also read and dispatch whatever arrived): for a publisher that reads its confirms only now and
then but wants every message on the wire when its call returns.
"""

from __future__ import annotations

from amqptool.transport.connection import Connection

__all__ = ["coalesce_sends", "send_now"]

_MAX_JOIN = 1 << 20  # bytes: beyond this, leave the rest for the next round


def coalesce_sends(connection: Connection) -> None:
    """Join queued frames before each send on this (connected) connection."""
    transport = connection._require()._impl._transport
    original = transport._produce  # the bound method of this transport
    buffers = transport._tx_buffers

    def _produce() -> None:
        if len(buffers) > 1:
            joined: list[bytes] = []
            size = 0
            while buffers and size < _MAX_JOIN:
                chunk = buffers.popleft()
                joined.append(chunk)
                size += len(chunk)
            buffers.appendleft(b"".join(joined))
        original()

    transport._produce = _produce


def send_now(connection: Connection) -> None:
    """Write the frames pika has queued for ``connection`` now, as its I/O loop would once the
    socket is writable (same handler: a write that would block stays queued for the loop, a
    failed one aborts the connection and the next read reports it). TLS connections are left
    to the loop."""
    transport = connection._require()._impl._transport
    if transport is None or not transport._tx_buffers:
        return
    if type(transport).__name__ != "_AsyncPlaintextTransport":
        connection.process_events(0)
        return
    transport._on_socket_writable()
