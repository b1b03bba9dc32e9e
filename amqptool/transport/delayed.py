"""Broker-side parking of far-off ETA tasks (docs/protocol.md §5.3).

Celery keeps every ETA task unacknowledged in worker memory, which runs into RabbitMQ's
``consumer_timeout`` (30 min by default) and overflows prefetch. Instead, a task due later than
the worker's threshold is *parked*: a copy (same body, properties and headers) goes to a
parking queue whose message TTL dead-letters it back to the task's own queue::

    amqptool.delay.<target-queue>.<bucket>     durable, classic
        x-message-ttl           = bucket * 1000 ms
        x-dead-letter-exchange  = ""               (the default exchange)
        x-dead-letter-routing-key = <target-queue>
        x-expires               = bucket * 1000 ms + 60 s   (idle buckets disappear)

Buckets are powers of two seconds, from 1 s to 2**22 s (~48.5 days, the largest TTL that fits
RabbitMQ's 32-bit milliseconds). A delay goes to the largest bucket not longer than it, so a
parked message never comes back late; it comes back early by less than half its delay and the
worker decides again (:func:`worker.policy.eta.decide`): park in a smaller bucket, or hold in memory
for the last stretch (under the threshold). A week's delay takes about a dozen hops.

When the task queue is a quorum queue (replicated, as on a RabbitMQ cluster) the bucket queues
are quorum queues too, so a parked task survives the loss of a node like the task queue does::

    amqptool.delay.<target-queue>.<bucket>.quorum   durable, quorum, the arguments above plus
        x-queue-type              = quorum
        x-dead-letter-strategy    = at-least-once   (the broker keeps a message until the
        x-overflow                = reject-publish   target queue confirmed it)

The ``.quorum`` suffix keeps both kinds apart (a classic bucket's name ends in its number), so a
queue that changes kind never meets a bucket of the other kind (RabbitMQ would refuse it, 406).

Every message in one bucket queue has the same TTL, so expiry at the head of the queue is
timely (per-message TTLs would block behind each other). Each park re-declares the bucket queue,
which also restarts its ``x-expires`` timer; the timer is longer than the TTL, so a queue never
expires with messages still in it.

Safety: :func:`park` needs a channel in publisher-confirm mode and publishes ``mandatory``; it
returns only after the broker confirmed the copy, and only then may the caller ack the original.
If the worker dies before the ack, the broker redelivers the original: nothing is lost (at
worst the task is parked twice and runs twice: at-least-once, like any ack-after-publish).

Dead-lettering adds ``x-death`` / ``x-first-death-*`` headers; :func:`park` strips those before
parking again so they do not pile up. RabbitMQ also drops a per-message ``expiration``
property when it dead-letters a message. A message whose target queue was deleted meanwhile is
dropped by the broker, as any message routed to a missing queue.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.transport.connection import Channel

__all__ = [
    "BROKER_DEATH_HEADERS",
    "MAX_BUCKET",
    "PARK_PREFIX",
    "QUORUM_SUFFIX",
    "bucket_for",
    "delay_queue_arguments",
    "delay_queue_name",
    "park",
    "park_envelope",
    "plan_hops",
    "was_parked",
]

PARK_PREFIX = "amqptool.delay"
MAX_BUCKET = 2**22  # seconds; 2**22 * 1000 ms + margin < 2**32 - 1
EXPIRES_MARGIN_MS = 60_000
_MAX_NAME_BYTES = 255
QUORUM_SUFFIX = ".quorum"
QUORUM_ARGUMENTS: Mapping[str, str] = {
    "x-queue-type": "quorum",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}

BROKER_DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
    }
)


def bucket_for(delay_seconds: float) -> int | None:
    """The parking bucket (seconds) for a delay: the largest power of two not above it.

    None when the delay is under one second (too short to park: hold it in memory).
    """
    if math.isnan(delay_seconds) or delay_seconds < 1:
        return None
    if delay_seconds >= MAX_BUCKET:  # also infinity
        return MAX_BUCKET
    return 1 << (int(delay_seconds).bit_length() - 1)


def plan_hops(delay_seconds: float, threshold: float = 0.0) -> list[int]:
    """The buckets a message waits in, in order, until the rest is within ``threshold``.

    >>> plan_hops(3.5)
    [2, 1]
    """
    hops: list[int] = []
    remaining = delay_seconds
    while remaining > max(threshold, 0.0):
        bucket = bucket_for(remaining)
        if bucket is None:
            break
        hops.append(bucket)
        remaining -= bucket
    return hops


def delay_queue_name(target_queue: str, bucket: int, *, quorum: bool = False) -> str:
    """``amqptool.delay.<target>.<bucket>`` (``.quorum`` after it for a quorum bucket); a
    target too long for that is named by a hash."""
    suffix = QUORUM_SUFFIX if quorum else ""
    name = f"{PARK_PREFIX}.{target_queue}.{bucket}{suffix}"
    if len(name.encode()) <= _MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(target_queue.encode()).hexdigest()[:24]
    return f"{PARK_PREFIX}.sha256-{digest}.{bucket}{suffix}"


def delay_queue_arguments(
    target_queue: str, bucket: int, *, quorum: bool = False
) -> dict[str, Any]:
    """The arguments a bucket queue is declared with (the same for every declare)."""
    ttl_ms = bucket * 1000
    args: dict[str, Any] = {
        "x-message-ttl": ttl_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target_queue,
        "x-expires": ttl_ms + EXPIRES_MARGIN_MS,
    }
    if quorum:
        args.update(QUORUM_ARGUMENTS)
    return args


def was_parked(headers: Mapping[str, Any] | None) -> bool:
    """True for a delivery that the broker dead-lettered out of a parking queue.

    The worker already sent ``task-received`` for it before parking it; it need not again.
    """
    deaths = (headers or {}).get("x-death")
    if not isinstance(deaths, list):
        return False
    return any(
        isinstance(death, Mapping)
        and str(death.get("queue", "")).startswith(PARK_PREFIX + ".")
        and death.get("reason") in ("expired", b"expired")
        for death in deaths
    )


def park_envelope(
    envelope: Envelope, target_queue: str, bucket: int, *, quorum: bool = False
) -> Envelope:
    """The copy to publish: same body and properties, routed to the bucket queue.

    The broker's own dead-letter headers are dropped; every other header is kept as is.
    """
    headers = {
        k: v for k, v in envelope.properties.headers.items() if k not in BROKER_DEATH_HEADERS
    }
    properties = replace(envelope.properties, headers=headers)
    return Envelope(
        body=envelope.body,
        properties=properties,
        exchange="",
        routing_key=delay_queue_name(target_queue, bucket, quorum=quorum),
    )


def park(
    channel: Channel,
    envelope: Envelope,
    target_queue: str,
    delay_seconds: float,
    *,
    timeout: float | None = None,
    quorum: bool = False,
) -> int:
    """Park a copy of ``envelope`` for (at most) ``delay_seconds``; returns the bucket used.

    ``quorum``: the target is a quorum queue, park in a quorum bucket (see the module doc).

    Declares the bucket queue, publishes the copy ``mandatory`` and waits for the broker's
    confirm. Ack the original only after this returns. Raises ``ValueError`` for a delay under
    one second or a channel without publisher confirms, and amqptool's broker errors
    (e.g. :class:`~amqptool.transport.errors.UnroutableError`) if the copy was not accepted;
    past ``timeout`` (None: no limit) BlockedError / UnconfirmedError.
    """
    if not channel.confirm:
        raise ValueError("park() needs a channel opened with confirm=True")
    bucket = bucket_for(delay_seconds)
    if bucket is None:
        raise ValueError(f"a delay of {delay_seconds!r} s is too short to park (hold it)")
    queue = delay_queue_name(target_queue, bucket, quorum=quorum)
    channel.queue_declare(
        queue, durable=True, arguments=delay_queue_arguments(target_queue, bucket, quorum=quorum)
    )
    channel.publish(
        park_envelope(envelope, target_queue, bucket, quorum=quorum),
        mandatory=True,
        timeout=timeout,
    )
    return bucket
