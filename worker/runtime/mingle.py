"""Mingle: at startup, learn the revoked ids of the workers already running (docs/protocol.md §5.6).

Before it consumes any task the worker broadcasts Celery's ``hello`` (inspect, to every node on
``celery.pidbox``) with its own revoked ids, merges the ids every reply carries and moves its
Lamport clock past theirs; Celery workers and ours answer it. A task revoked on the cluster
before this worker started is then never run here either (Celery users lose those revokes).

On a connection of its own, before the worker's pidbox queue exists (so it does not hear
itself). Waiting: the hello is published ``mandatory`` with publisher confirms, so when no
other worker's mailbox is bound the broker says so at once and mingle ends at once; otherwise
it waits up to ``timeout`` (1 s, Celery's) for the first reply and then, as the control client
does for a broadcast, until no new reply came for a quarter of that (never past ``timeout``).
Mingle failing (broker unreachable...) is logged and the worker starts without it.
"""

from __future__ import annotations

import logging
import time
import uuid

from amqptool.codec.control import (
    CONTROL_EXCHANGE,
    QUEUE_ARGUMENTS,
    REPLY_EXCHANGE,
    decode_reply,
    encode_request,
    new_request,
    reply_queue_name,
)
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import LamportClock
from amqptool.codec.signing import Verifier, sign
from amqptool.errors import AmqpToolError, DecodeError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection, UnroutableError
from worker.policy.revoked import RevokedSet

__all__ = ["DEFAULT_TIMEOUT", "mingle"]

log = logging.getLogger("worker.consumer")

DEFAULT_TIMEOUT = 1.0


def mingle(
    settings: BrokerSettings,
    nodename: str,
    revoked: RevokedSet,
    clock: LamportClock,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Say hello to the running workers and merge what they know; returns the nodes heard."""
    replies: dict[str, object] = {}
    last_reply = [0.0]

    key = settings.control_key
    verifier = Verifier(key) if key is not None else None

    def on_reply(env: Envelope) -> None:
        refused = verifier.check(env) if verifier is not None else ""
        if refused:  # with a control key, only keyed workers may feed us revoked ids
            log.warning("mingle: ignoring a reply: %s", refused)
            return
        try:
            body = decode_reply(env)
        except DecodeError as exc:
            log.warning("mingle: ignoring a reply that does not decode: %s", exc)
            return
        replies.update(body)
        last_reply[0] = time.monotonic()

    oid = str(uuid.uuid4())
    conn = Connection(settings, name=f"amqptool-worker {nodename} mingle")
    try:
        conn.connect()
        ch = conn.channel(confirm=True)
        ch.exchange_declare(CONTROL_EXCHANGE, "fanout", durable=False)
        ch.exchange_declare(REPLY_EXCHANGE, "direct", durable=False)
        queue = reply_queue_name(oid)
        ch.queue_declare(queue, exclusive=True, auto_delete=True, arguments=QUEUE_ARGUMENTS)
        ch.queue_bind(queue, REPLY_EXCHANGE, oid)
        ch.consume(queue, on_reply, no_ack=True)
        req = new_request("hello", {"from_node": nodename, "revoked": revoked.ids()}, reply_oid=oid)
        started = time.monotonic()
        env = encode_request(req, clock=clock.forward(), expires=time.time() + timeout)
        if key is not None:
            env = sign(env, key)
        try:
            ch.publish(env, mandatory=True, timeout=timeout)
        except UnroutableError:
            log.info("mingle: all alone")
            return []
        gap = timeout / 4
        while True:
            now = time.monotonic()
            deadline = started + timeout
            if last_reply[0]:
                deadline = min(deadline, last_reply[0] + gap)
            if now >= deadline:
                break
            conn.process_events(deadline - now)
    except AmqpToolError as exc:
        log.warning("mingle skipped: %s", exc)
        return []
    finally:
        conn.close()
    return _merge(replies, nodename, revoked, clock)


def _merge(
    replies: dict[str, object], nodename: str, revoked: RevokedSet, clock: LamportClock
) -> list[str]:
    nodes = []
    now = time.time()
    for node, reply in replies.items():
        if node == nodename or not isinstance(reply, dict) or "error" in reply:
            continue
        nodes.append(node)
        new = revoked.merge(reply.get("revoked"), now)
        theirs = reply.get("clock")
        if isinstance(theirs, int) and not isinstance(theirs, bool):
            clock.adjust(theirs)
        log.info("mingle: sync with %s (%d new revoked id(s))", node, new)
    if not nodes:
        log.info("mingle: all alone")
    return nodes
