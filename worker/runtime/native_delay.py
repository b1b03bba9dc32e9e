"""Celery 5.5+'s native delayed delivery topology, declared as a Celery worker declares it.

Celery clients send a countdown/ETA task for a quorum queue behind a non-direct exchange to the
topic exchange ``celery_delayed_27``, with the delay in seconds written as 28 binary digits in
front of the routing key (``0.0.…1.0.1.<routing key>``). Each level ``N`` (27 … 0) is a topic
exchange and a queue of the same name whose message TTL is ``2**N`` s:

- queue ``celery_delayed_N`` is bound to exchange ``celery_delayed_N`` with ``1.#`` behind
  ``27 - N`` ``*.`` (its bit set: wait 2**N s there), and dead-letters to the next level's
  exchange (level 0: to ``celery_delayed_delivery``);
- exchange ``celery_delayed_{N-1}`` is bound to exchange ``celery_delayed_N`` with ``0.#``
  behind ``27 - N`` ``*.`` (bit clear: go straight on); ``celery_delayed_delivery`` is bound to
  ``celery_delayed_0`` with ``0.#`` behind 27 ``*.`` — so after level 0 every message
  reaches the delivery exchange whatever its last bit;
- each consumed queue behind a non-direct exchange: its exchange bound to
  ``celery_delayed_delivery`` with ``#.<routing key>``, and the queue bound to its exchange with
  that key, so the message comes back to its queue when its time is up.

The level queues are quorum queues by default (Celery's
``broker_native_delayed_delivery_queue_type``), ``x-overflow: reject-publish``, and
at-least-once dead-lettering for quorum. Queues that exist already are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from amqptool.errors import ChannelClosedError
from amqptool.transport import Connection
from amqptool.transport.existing import inspect_queue
from worker.policy.queues import QueueSpec

__all__ = ["DELIVERY_EXCHANGE", "LEVELS", "declare_topology", "level_name", "level_queue_arguments"]

log = logging.getLogger("worker.native_delay")

LEVELS = 28  # bits of delay: up to 2**28 - 1 s
DELIVERY_EXCHANGE = "celery_delayed_delivery"


def level_name(level: int) -> str:
    return f"celery_delayed_{level}"


def level_queue_arguments(level: int, queue_type: str = "quorum") -> dict[str, Any]:
    args: dict[str, Any] = {
        "x-queue-type": queue_type,
        "x-overflow": "reject-publish",
        "x-message-ttl": 2**level * 1000,
        "x-dead-letter-exchange": level_name(level - 1) if level > 0 else DELIVERY_EXCHANGE,
    }
    if queue_type == "quorum":
        args["x-dead-letter-strategy"] = "at-least-once"
    return args


def _skip(levels_above: int) -> str:
    return "*." * levels_above


def declare_topology(conn: Connection, queues: Iterable[QueueSpec], queue_type: str) -> int:
    """Declare the levels and bind ``queues`` (those behind a non-direct exchange) to the
    delivery exchange; returns how many queues were bound."""
    ch = conn.channel()
    try:
        for level in range(LEVELS - 1, -1, -1):
            name = level_name(level)
            ch.exchange_declare(name, "topic", durable=True)
            if inspect_queue(conn, name) is None:
                ch.queue_declare(
                    name, durable=True, arguments=level_queue_arguments(level, queue_type)
                )
            ch.queue_bind(name, name, _skip(LEVELS - 1 - level) + "1.#")
        for level in range(LEVELS - 1, 0, -1):
            key = _skip(LEVELS - 1 - level) + "0.#"
            ch.exchange_bind(level_name(level - 1), level_name(level), key)
        ch.exchange_declare(DELIVERY_EXCHANGE, "topic", durable=True)
        ch.exchange_bind(DELIVERY_EXCHANGE, level_name(0), _skip(LEVELS - 1) + "0.#")
        bound = 0
        for spec in queues:
            if not spec.exchange or spec.exchange_type == "direct":
                continue
            key = spec.routing_key if spec.routing_key.startswith("#") else f"#.{spec.routing_key}"
            ch.exchange_bind(spec.exchange, DELIVERY_EXCHANGE, key)
            ch.queue_bind(spec.name, spec.exchange, key)
            bound += 1
        return bound
    except ChannelClosedError as exc:
        log.error("cannot set up Celery's native delayed delivery: %s", exc)
        return 0
    finally:
        ch.close()
