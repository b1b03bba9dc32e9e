"""Pure helpers of the task client: calling options to a :class:`TaskMessage`, signatures.

Nothing here touches the network: ``send_task`` turns its keyword options into a message with
:func:`build_message`, which is also what tests and the ``amqptool call`` parser rely on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from amqptool.client.signature import Signature
from amqptool.codec.ids import new_id
from amqptool.codec.tasks import TaskMessage
from amqptool.codec.times import parse_iso, utcnow
from amqptool.errors import DecodeError, UsageError

__all__ = [
    "DEFAULT_QUEUE",
    "RetryPolicy",
    "build_message",
    "signature",
    "to_eta",
    "to_expires",
]

DEFAULT_QUEUE = "celery"
MAX_PRIORITY = 255  # an AMQP octet; RabbitMQ honours up to the queue's x-max-priority

When = datetime | str | int | float


@dataclass(frozen=True)
class RetryPolicy:
    """How publishing is retried on a connection failure (kombu's ``retry_policy``).

    ``max_retries`` retries after the first try (None: forever); the pause before retry *n*
    (1-based) is ``min(interval_start + (n - 1) * interval_step, interval_max)`` seconds.
    """

    max_retries: int | None = 3
    interval_start: float = 0.0
    interval_step: float = 0.2
    interval_max: float = 0.2

    @classmethod
    def from_mapping(cls, policy: Mapping[str, Any] | None) -> RetryPolicy:
        if not policy:
            return cls()
        unknown = set(policy) - {"max_retries", "interval_start", "interval_step", "interval_max"}
        if unknown:
            raise UsageError(f"unknown retry_policy keys: {', '.join(sorted(unknown))}")
        base = cls()
        max_retries = policy.get("max_retries", base.max_retries)
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise UsageError(f"retry_policy max_retries must be an int >= 0, not {max_retries!r}")
        return cls(
            max_retries=max_retries,
            interval_start=_seconds(policy.get("interval_start", base.interval_start)),
            interval_step=_seconds(policy.get("interval_step", base.interval_step)),
            interval_max=_seconds(policy.get("interval_max", base.interval_max)),
        )

    def interval(self, retry: int) -> float:
        """Seconds to pause before retry number ``retry`` (1-based)."""
        return max(
            0.0, min(self.interval_start + (retry - 1) * self.interval_step, self.interval_max)
        )


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UsageError(f"retry_policy intervals must be seconds >= 0, not {value!r}")
    return float(value)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _absolute(value: When, what: str, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except DecodeError:
            raise UsageError(f"{what} is not an ISO 8601 time: {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return now + timedelta(seconds=float(value))
    raise UsageError(f"{what} must be seconds, a datetime or an ISO 8601 string, not {value!r}")


def to_eta(
    countdown: float | None, eta: When | None, *, now: datetime | None = None
) -> datetime | None:
    """The absolute ETA for ``countdown`` (seconds from now) or ``eta`` (absolute time).

    A naive datetime is taken as UTC. Giving both is a :class:`UsageError`.
    """
    now = now or utcnow()
    if countdown is not None and eta is not None:
        raise UsageError("give countdown or eta, not both")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int | float):
            raise UsageError(f"countdown must be a number of seconds, not {countdown!r}")
        return now + timedelta(seconds=float(countdown))
    if eta is None:
        return None
    if isinstance(eta, int | float) and not isinstance(eta, bool):
        raise UsageError("eta must be a datetime or an ISO 8601 string (use countdown=seconds)")
    return _absolute(eta, "eta", now)


def to_expires(expires: When | None, *, now: datetime | None = None) -> datetime | None:
    """The absolute expiry: seconds from now (numeric), a datetime, or an ISO 8601 string."""
    if expires is None:
        return None
    return _absolute(expires, "expires", now or utcnow())


def signature(
    name: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    immutable: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Signature:
    """A task signature as Celery puts it on the wire (in ``link``, ``link_error``, chains).

    ``options`` may carry ``task_id``, ``reply_to``, ``queue``, ``countdown``, ``priority``...
    (a Celery worker applies them when it sends the signature). To read a callback's result
    from this client, give ``options={"task_id": ..., "reply_to": client.oid}``. The value is a
    :class:`~amqptool.client.signature.Signature`: a dict that can also be sent and chained.
    """
    if not isinstance(name, str) or not name:
        raise UsageError("a signature needs a task name")
    return Signature(
        name, _args_list(args), _kwargs_dict(kwargs), dict(options or {}), immutable=immutable
    )


def _args_list(args: Any) -> list[Any]:
    if type(args) is list or type(args) is tuple:  # the usual case, without the ABC checks
        return list(args)
    if args is None:
        return []
    if isinstance(args, str | bytes | Mapping) or not isinstance(args, Iterable):
        raise UsageError(f"args must be a list or tuple, not {type(args).__name__}")
    return list(args)


def _kwargs_dict(kwargs: Any) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise UsageError(f"kwargs must be a mapping, not {type(kwargs).__name__}")
    return {str(k): v for k, v in kwargs.items()}


def _signatures(value: Any, what: str) -> list[dict[str, Any]] | None:
    """``link``/``link_error``: one signature (a mapping) or a list of them."""
    if value is None:
        return None
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise UsageError(f"{what} must be a signature (dict) or a list of them")
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("task"), str):
            raise UsageError(f"{what}: not a signature: {item!r}")
        sig = dict(item)
        sig.setdefault("args", [])
        sig.setdefault("kwargs", {})
        sig.setdefault("options", {})
        sig.setdefault("subtask_type", None)
        sig.setdefault("immutable", False)
        out.append(sig)
    return out or None


def _limit(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UsageError(f"{what} must be seconds >= 0, not {value!r}")
    return value


def build_message(
    name: str,
    args: Sequence[Any] | None = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    task_id: str | None = None,
    countdown: float | None = None,
    eta: When | None = None,
    expires: When | None = None,
    priority: int | None = None,
    link: Any = None,
    link_error: Any = None,
    headers: Mapping[str, Any] | None = None,
    shadow: str | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    ignore_result: bool = False,
    parent_id: str | None = None,
    root_id: str | None = None,
    reply_to: str | None = None,
    group: str | None = None,
    group_index: int | None = None,
    now: datetime | None = None,
) -> TaskMessage:
    """The protocol v2 task message for one ``send_task`` call (validated; UsageError if not)."""
    if not isinstance(name, str) or not name:
        raise UsageError("a task name is required")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 255
    ):
        raise UsageError(f"priority must be an int from 0 to {MAX_PRIORITY}, not {priority!r}")
    now = now or utcnow()
    extra: dict[str, Any] = {}
    for key, value in (headers or {}).items():
        extra[str(key)] = value
    tid = str(task_id) if task_id else new_id()
    return TaskMessage(
        task=name,
        id=tid,
        args=_args_list(args),
        kwargs=_kwargs_dict(kwargs),
        callbacks=_signatures(link, "link"),
        errbacks=_signatures(link_error, "link_error"),
        eta=to_eta(countdown, eta, now=now),
        expires=to_expires(expires, now=now),
        time_limit=_limit(time_limit, "time_limit"),
        soft_time_limit=_limit(soft_time_limit, "soft_time_limit"),
        root_id=root_id or tid,
        parent_id=parent_id,
        group=group,
        group_index=group_index,
        shadow=shadow,
        ignore_result=bool(ignore_result),
        extra_headers=extra,
        reply_to=reply_to,
        correlation_id=tid,
        priority=priority,
    )
