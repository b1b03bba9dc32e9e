"""``Task.retry()``: the republished message (docs/protocol.md §1.6, a retry published by the
worker).

Same id, reply_to, correlation_id, origin and root_id as the original; ``retries`` + 1; a new
absolute ``eta``; ``parent_id`` = the task's own id. The message is handed to the pool's sink,
which gets it published on the broker thread before the task's RETRY state and its ack.

When and whether to retry (max_retries, default_retry_delay, backoff) is decided by
:mod:`worker.task.retry_plan`; this module only builds and hands over the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.codec.times import utcnow

if TYPE_CHECKING:
    from worker.task.context import Context

__all__ = ["publish_retry", "retry_message"]

# Dead-lettering (ETA parking, amqptool.transport.delayed) adds these; a new message starts clean.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


def _as_time(value: Any, now: datetime) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return now + timedelta(seconds=float(value))
    return None


def retry_message(
    msg: TaskMessage,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    eta: datetime | None = None,
    countdown: float | None = None,
    options: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> TaskMessage:
    """The message that retries ``msg``."""
    now = now or utcnow()
    opts = dict(options or {})
    if eta is None:
        eta = now + timedelta(seconds=float(countdown or 0))
    new_args = list(args) if args is not None else list(msg.args)
    new_kwargs = dict(kwargs) if kwargs is not None else dict(msg.kwargs)
    return dataclasses.replace(
        msg,
        args=new_args,
        kwargs=new_kwargs,
        retries=msg.retries + 1,
        eta=eta,
        expires=_as_time(opts.get("expires"), now) if "expires" in opts else msg.expires,
        parent_id=msg.id,
        root_id=msg.root_id or msg.id,
        argsrepr=None if args is not None else msg.argsrepr,
        kwargsrepr=None if kwargs is not None else msg.kwargsrepr,
        priority=opts.get("priority", msg.priority),
        time_limit=opts.get("time_limit", msg.time_limit),
        soft_time_limit=opts.get("soft_time_limit", msg.soft_time_limit),
        extra_headers={
            k: v for k, v in msg.extra_headers.items() if not k.startswith(_BROKER_HEADERS)
        },
        stamps=dict(msg.stamps),
    )


def publish_retry(
    req: Context,
    *,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    eta: datetime | None,
    countdown: float | None,
    options: Mapping[str, Any],
) -> datetime:
    """Build the retry of the running request and hand it to the sink. Returns its ETA."""
    assert req.message is not None and req.sink is not None
    new = retry_message(
        req.message, args=args, kwargs=kwargs, eta=eta, countdown=countdown, options=options
    )
    queue = options.get("queue") or req.queue or "celery"
    env = encode_task(
        new,
        serializer=str(options.get("serializer") or "json"),
        exchange=str(options.get("exchange") or ""),
        routing_key=str(options.get("routing_key") or queue),
    )
    req.sink.publish(env)
    assert new.eta is not None
    return new.eta
