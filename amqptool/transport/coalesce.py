"""Send the frames queued since the last write in one ``send()`` call, on one connection.

pika queues every frame (a published message is three: method, header, body) as its own
buffer and its transport then calls ``socket.send()`` once per buffer. A worker that publishes
a result, a batch of events and an ack per loop iteration therefore makes several system calls
per task. :func:`coalesce_sends` wraps the ``_produce`` of one connection's transport (the
instance, not pika's class: other connections in the process are untouched) so that, when more
than one buffer is waiting, they are joined first (the byte count is unchanged, partial sends
work as before). Opt-in (the worker's link uses it, again after each reconnect); behaviour on
the wire is identical.

:func:`send_now` writes what is queued at once rather than on the next turn of pika's I/O loop:
the worker calls it right after queueing acks, so the broker can deliver the next messages
while the worker is still busy (pika would otherwise write them only when the worker next
polls, which on a busy worker is after its pool thread ran the whole batch).
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
    """Write the frames queued on this connection now (plain TCP only; over TLS they wait for
    the I/O loop as usual). Errors are handled as pika handles them when the socket is writable:
    EAGAIN leaves the rest queued, anything else aborts the connection (seen on the next poll)."""
    conn = connection._conn
    impl = conn._impl if conn is not None else None
    transport = impl._transport if impl is not None else None
    if transport is None or not transport._tx_buffers:
        return
    if type(transport).__name__ == "_AsyncPlaintextTransport":
        transport._on_socket_writable()
