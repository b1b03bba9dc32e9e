"""The task queues a worker consumes, described as Celery describes them (pure, no broker I/O).

A :class:`QueueSpec` is what ``-Q name`` or the ``add_consumer`` control command asks for: the
queue, the exchange it is bound to and how both are declared. It follows kombu's
``Queue.from_dict`` (which Celery's ``add_consumer`` uses): the exchange defaults to the queue's
name, its type to ``direct``, the routing key to the queue's name; ``durable``/``auto_delete``
apply to both the exchange and the queue unless ``exchange_*``/``queue_*`` say otherwise;
``expires``/``message_ttl`` (seconds) and ``max_length``/``max_length_bytes``/``max_priority``
become the ``x-*`` queue arguments. :meth:`QueueSpec.as_celery_dict` is the item of
``inspect active_queues`` (docs/protocol.md §4.6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXCHANGE_TYPES", "QueueSpec"]

EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")

# option -> (x-argument, converter): kombu's RABBITMQ_QUEUE_ARGUMENTS
_X_ARGUMENTS: dict[str, tuple[str, Any]] = {
    "expires": ("x-expires", lambda s: int(float(s) * 1000)),
    "message_ttl": ("x-message-ttl", lambda s: int(float(s) * 1000)),
    "max_length": ("x-max-length", int),
    "max_length_bytes": ("x-max-length-bytes", int),
    "max_priority": ("x-max-priority", int),
}
_FLAGS = (
    "durable",
    "auto_delete",
    "exclusive",
    "exchange_durable",
    "exchange_auto_delete",
    "queue_durable",
    "queue_auto_delete",
    "no_declare",
)
_TABLES = ("queue_arguments", "binding_arguments", "consumer_arguments", "exchange_arguments")
OPTIONS = frozenset(
    (*_X_ARGUMENTS, *_FLAGS, *_TABLES, "binding_key", "delivery_mode", "alias", "no_ack")
)


def _flag(options: Mapping[str, Any], specific: str, general: str, default: bool) -> bool:
    value = options.get(specific)
    if value is None:
        value = options.get(general)
    if value is None:
        return default
    if not isinstance(value, bool | int):
        raise ValueError(f"{specific.removeprefix('queue_')} must be true or false, not {value!r}")
    return bool(value)


def _table(options: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be an object, not {value!r}")
    return dict(value)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    exchange: str
    exchange_type: str = "direct"
    routing_key: str = ""
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    exchange_durable: bool = True
    exchange_auto_delete: bool = False
    exchange_arguments: dict[str, Any] | None = None
    queue_arguments: dict[str, Any] | None = None
    binding_arguments: dict[str, Any] | None = None
    consumer_arguments: dict[str, Any] | None = None
    limits: dict[str, float | int] = field(default_factory=dict)  # expires, message_ttl, ...
    no_declare: bool = False
    alias: str | None = None

    @classmethod
    def default(cls, name: str) -> QueueSpec:
        """``-Q name``: a durable queue bound to a durable direct exchange of the same name."""
        return cls(name, exchange=name, routing_key=name)

    @classmethod
    def from_options(
        cls,
        queue: str,
        exchange: str | None = None,
        exchange_type: str | None = None,
        routing_key: str | None = None,
        **options: Any,
    ) -> QueueSpec:
        """``add_consumer`` arguments → a spec; ValueError names a bad or unknown option."""
        if not isinstance(queue, str) or not queue.strip():
            raise ValueError(f"queue must be a non-empty name, not {queue!r}")
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown queue option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}"
            )
        if options.get("no_ack"):
            raise ValueError(
                "no_ack queues are not supported: tasks are acknowledged by the worker"
            )
        kind = exchange_type or "direct"
        if kind not in EXCHANGE_TYPES:
            raise ValueError(f"exchange_type must be one of {', '.join(EXCHANGE_TYPES)}")
        key = routing_key or options.get("binding_key") or queue
        exclusive = _flag(options, "exclusive", "exclusive", False)
        limits: dict[str, float | int] = {}
        for option, (_x, convert) in _X_ARGUMENTS.items():
            value = options.get(option)
            if value is not None:
                try:
                    converted = convert(value)
                except (TypeError, ValueError, OverflowError):  # "x", NaN, infinity
                    raise ValueError(f"{option} must be a number, not {value!r}") from None
                if isinstance(value, bool) or not 0 <= converted < 2**63:
                    raise ValueError(f"{option} must be a number >= 0, not {value!r}")
                limits[option] = value
        alias = options.get("alias")
        return cls(
            queue,
            exchange=queue if exchange is None else exchange,
            exchange_type=kind,
            routing_key=str(key),
            durable=_flag(options, "queue_durable", "durable", True),
            auto_delete=exclusive or _flag(options, "queue_auto_delete", "auto_delete", False),
            exclusive=exclusive,
            exchange_durable=_flag(options, "exchange_durable", "durable", True),
            exchange_auto_delete=_flag(options, "exchange_auto_delete", "auto_delete", False),
            exchange_arguments=_table(options, "exchange_arguments"),
            queue_arguments=_table(options, "queue_arguments"),
            binding_arguments=_table(options, "binding_arguments"),
            consumer_arguments=_table(options, "consumer_arguments"),
            limits=limits,
            no_declare=_flag(options, "no_declare", "no_declare", False),
            alias=None if alias is None else str(alias),
        )

    def declare_arguments(self) -> dict[str, Any]:
        """The ``queue.declare`` arguments: ``queue_arguments`` plus the ``x-*`` limits."""
        out = dict(self.queue_arguments or {})
        for option, value in self.limits.items():
            x_name, convert = _X_ARGUMENTS[option]
            out[x_name] = convert(value)
        return out

    def as_celery_dict(self) -> dict[str, Any]:
        """The ``inspect active_queues`` item (kombu's ``Queue.as_dict(recurse=True)``)."""
        exchange = {
            "name": self.exchange,
            "type": self.exchange_type,
            "arguments": self.exchange_arguments,
            "durable": self.exchange_durable,
            "passive": False,
            "auto_delete": self.exchange_auto_delete,
            "delivery_mode": None,
            "no_declare": False,
        }
        limit = self.limits.get
        return {
            "name": self.name,
            "exchange": exchange,
            "routing_key": self.routing_key,
            "queue_arguments": self.queue_arguments,
            "binding_arguments": self.binding_arguments,
            "consumer_arguments": self.consumer_arguments,
            "durable": self.durable,
            "exclusive": self.exclusive,
            "auto_delete": self.auto_delete,
            "no_ack": False,
            "alias": self.alias,
            "bindings": [],
            "no_declare": self.no_declare or None,
            "expires": _float(limit("expires")),
            "message_ttl": _float(limit("message_ttl")),
            "max_length": _int(limit("max_length")),
            "max_length_bytes": _int(limit("max_length_bytes")),
            "max_priority": _int(limit("max_priority")),
        }


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)
