"""Celery task messages: protocol v2 encode/decode, protocol v1 decode (docs/protocol.md §1).

A message is v2 when its header table holds ``task``; otherwise a body object with ``task`` is
v1; anything else is not a task message (:class:`NotATaskMessage`).
"""

from __future__ import annotations

import os
import reprlib
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.ids import new_id
from amqptool.codec.serialization import DEFAULT_ACCEPT, compress, decompress, dumps, loads
from amqptool.codec.times import format_iso, parse_iso, utcnow
from amqptool.errors import DecodeError

__all__ = [
    "InvalidTaskMessage",
    "NotATaskMessage",
    "TaskMessage",
    "decode_task",
    "default_origin",
    "encode_task",
    "is_v2",
    "safe_repr",
    "task_headers",
]

_V2_KNOWN_HEADERS = frozenset(
    {
        "lang",
        "task",
        "id",
        "shadow",
        "eta",
        "expires",
        "group",
        "group_index",
        "retries",
        "timelimit",
        "root_id",
        "parent_id",
        "argsrepr",
        "kwargsrepr",
        "origin",
        "ignore_result",
        "replaced_task_nesting",
        "stamped_headers",
        "stamps",
        "compression",
        "meth",
    }
)


class NotATaskMessage(DecodeError):
    """Neither a v2 header table with ``task`` nor a v1 body with ``task``."""


class InvalidTaskMessage(DecodeError):
    """A task message whose fields are wrong (bad eta/expires, kwargs not a mapping, ...).

    ``task_id``/``task_name`` are set when they could be read, so a failure can be reported.
    """

    def __init__(
        self, message: str, *, task_id: str | None = None, task_name: str | None = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.task_name = task_name


_origin: tuple[int, str] = (0, "")


def default_origin() -> str:
    """``gen<pid>@<host>`` as Celery's ``anon_nodename()`` (the host name looked up once per
    process, as Celery memoizes it: a system call per message otherwise)."""
    global _origin
    pid = os.getpid()
    if _origin[0] != pid:
        _origin = (pid, f"gen{pid}@{socket.gethostname()}")
    return _origin[1]


_repr = reprlib.Repr()
_repr.maxstring = 1024
_repr.maxother = 1024
_repr.maxlist = 100
_repr.maxdict = 100
_repr.maxtuple = 100
_repr.maxlevel = 8


def safe_repr(value: Any, maxlen: int = 1024) -> str:
    """``repr`` that never raises and is at most ``maxlen`` characters."""
    try:
        text = repr(value)
    except Exception:  # a user object's __repr__ may raise anything
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) > maxlen:
        text = text[: maxlen - 3] + "..."
    return text


@dataclass
class TaskMessage:
    """One task request, whichever protocol it came in."""

    task: str
    id: str = field(default_factory=new_id)
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] | None = None
    errbacks: list[dict[str, Any]] | None = None
    chain: list[dict[str, Any]] | None = None
    chord: dict[str, Any] | None = None
    eta: datetime | None = None
    expires: datetime | None = None
    retries: int = 0
    time_limit: float | None = None  # hard
    soft_time_limit: float | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    group_index: int | None = None
    shadow: str | None = None
    origin: str | None = None
    ignore_result: bool = False
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    stamps: dict[str, Any] = field(default_factory=dict)
    stamped_headers: list[str] | None = None
    replaced_task_nesting: int = 0
    extra_headers: dict[str, Any] = field(default_factory=dict)
    # AMQP properties
    reply_to: str | None = None
    correlation_id: str | None = None
    priority: int | None = None
    delivery_mode: int = 2
    # how it arrived
    protocol: int = 2

    @property
    def display_name(self) -> str:
        return self.shadow or self.task

    def embed(self) -> dict[str, Any]:
        return {
            "callbacks": self.callbacks,
            "errbacks": self.errbacks,
            "chain": self.chain,
            "chord": self.chord,
        }


def is_v2(headers: Mapping[str, Any] | None) -> bool:
    return bool(headers) and "task" in headers  # type: ignore[operator]  # guarded by bool()


# --------------------------------------------------------------------------- encode


def task_headers(msg: TaskMessage) -> dict[str, Any]:
    """The v2 headers of ``msg``, as Celery 5.7 sends them (also a Celery request's fields)."""
    root_id = msg.root_id or msg.id
    headers: dict[str, Any] = {
        "lang": "py",
        "task": msg.task,
        "id": msg.id,
        "shadow": msg.shadow,
        "eta": format_iso(msg.eta) if msg.eta else None,
        "expires": format_iso(msg.expires) if msg.expires else None,
        "group": msg.group,
        "group_index": msg.group_index,
        "retries": int(msg.retries),
        "timelimit": [msg.time_limit, msg.soft_time_limit],
        "root_id": root_id,
        "parent_id": msg.parent_id,
        "argsrepr": msg.argsrepr if msg.argsrepr is not None else safe_repr(tuple(msg.args)),
        "kwargsrepr": msg.kwargsrepr if msg.kwargsrepr is not None else safe_repr(msg.kwargs),
        "origin": msg.origin or default_origin(),
        "ignore_result": bool(msg.ignore_result),
        "replaced_task_nesting": int(msg.replaced_task_nesting),
        "stamped_headers": msg.stamped_headers,
        "stamps": dict(msg.stamps),
    }
    for key, value in msg.extra_headers.items():
        headers.setdefault(key, value)
    return headers


def encode_task(
    msg: TaskMessage,
    *,
    serializer: str = "json",
    compression: str | None = None,
    exchange: str = "",
    routing_key: str = "celery",
) -> Envelope:
    """A protocol v2 message exactly shaped like Celery 5.7's (docs/protocol.md §1.6)."""
    headers = task_headers(msg)
    body, ctype, cenc = dumps([list(msg.args), dict(msg.kwargs), msg.embed()], serializer)
    if compression:
        body, headers["compression"] = compress(body, compression)
    props = Properties(
        content_type=ctype,
        content_encoding=cenc,
        headers=headers,
        delivery_mode=msg.delivery_mode,
        priority=msg.priority if msg.priority is not None else 0,
        correlation_id=msg.correlation_id or msg.id,
        reply_to=msg.reply_to,
    )
    if msg.expires is not None:
        ttl_ms = max(0, int((msg.expires - utcnow()).total_seconds() * 1000))
        props.expiration = str(ttl_ms)
    return Envelope(body=body, properties=props, exchange=exchange, routing_key=routing_key)


# --------------------------------------------------------------------------- decode


def _opt_time(value: Any, what: str, task_id: str | None, name: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A few non-Celery producers send seconds; take them as relative like apply_async.
        try:
            return utcnow() + timedelta(seconds=float(value))
        except (OverflowError, ValueError):  # inf, nan, or past the year 9999
            raise InvalidTaskMessage(
                f"{what} is out of range: {value!r}", task_id=task_id, task_name=name
            ) from None
    try:
        return parse_iso(value)
    except DecodeError:
        raise InvalidTaskMessage(
            f"{what} is not an ISO 8601 time: {value!r}", task_id=task_id, task_name=name
        ) from None


def _timelimit(value: Any) -> tuple[float | None, float | None]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None, None
    hard, soft = value

    def num(v: Any) -> float | None:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        return None

    return num(hard), num(soft)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sig_list(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list):
        return [dict(s) for s in value if isinstance(s, Mapping)]
    return None


def _body_bytes(env: Envelope) -> bytes:
    comp = env.headers.get("compression") if env.headers else None
    if isinstance(comp, str) and comp:
        return decompress(env.body, comp)
    return env.body


def decode_task(env: Envelope, *, accept: Collection[str] = DEFAULT_ACCEPT) -> TaskMessage:
    """Decode a v2 or v1 task message.

    Raises :class:`NotATaskMessage` (not a task at all), :class:`InvalidTaskMessage` (a task
    with bad fields) or :class:`DecodeError` (body refused or undecodable); nothing else.
    """
    headers = dict(env.headers or {})
    props = env.properties
    payload = loads(_body_bytes(env), props.content_type, props.content_encoding, accept=accept)
    if is_v2(headers):
        return _decode_v2(headers, payload, props)
    if isinstance(payload, Mapping) and "task" in payload:
        return _decode_v1(dict(payload), headers, props)
    raise NotATaskMessage("not a task message: no 'task' header and no task body")


def _decode_v2(headers: dict[str, Any], payload: Any, props: Properties) -> TaskMessage:
    name = headers.get("task")
    task_id = headers.get("id") or props.correlation_id
    if not isinstance(name, str) or not name:
        raise InvalidTaskMessage("task header is not a non-empty string", task_id=task_id)
    if not isinstance(task_id, str) or not task_id:
        raise InvalidTaskMessage("task message has no id", task_name=name)
    if not isinstance(payload, list | tuple) or len(payload) not in (2, 3):
        raise InvalidTaskMessage(
            "v2 body must be [args, kwargs, embed]", task_id=task_id, task_name=name
        )
    args, kwargs = payload[0], payload[1]
    embed = payload[2] if len(payload) == 3 else {}
    if not isinstance(args, list | tuple):
        raise InvalidTaskMessage("args must be a list", task_id=task_id, task_name=name)
    if not isinstance(kwargs, Mapping):
        raise InvalidTaskMessage("kwargs must be a mapping", task_id=task_id, task_name=name)
    if embed is None:
        embed = {}
    if not isinstance(embed, Mapping):
        raise InvalidTaskMessage("embed must be an object", task_id=task_id, task_name=name)
    hard, soft = _timelimit(headers.get("timelimit"))
    retries = headers.get("retries")
    extra = {k: v for k, v in headers.items() if k not in _V2_KNOWN_HEADERS}
    chord = embed.get("chord")
    stamps = headers.get("stamps")
    stamped = headers.get("stamped_headers")
    nesting = headers.get("replaced_task_nesting")
    group_index = headers.get("group_index")
    return TaskMessage(
        task=name,
        id=task_id,
        args=list(args),
        kwargs={str(k): v for k, v in kwargs.items()},
        callbacks=_sig_list(embed.get("callbacks")),
        errbacks=_sig_list(embed.get("errbacks")),
        chain=_sig_list(embed.get("chain")),
        chord=dict(chord) if isinstance(chord, Mapping) else None,
        eta=_opt_time(headers.get("eta"), "eta", task_id, name),
        expires=_opt_time(headers.get("expires"), "expires", task_id, name),
        retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
        time_limit=hard,
        soft_time_limit=soft,
        root_id=_opt_str(headers.get("root_id")) or task_id,
        parent_id=_opt_str(headers.get("parent_id")),
        group=_opt_str(headers.get("group")),
        group_index=group_index if isinstance(group_index, int) else None,
        shadow=_opt_str(headers.get("shadow")),
        origin=_opt_str(headers.get("origin")),
        ignore_result=bool(headers.get("ignore_result") or False),
        argsrepr=_opt_str(headers.get("argsrepr")),
        kwargsrepr=_opt_str(headers.get("kwargsrepr")),
        stamps=dict(stamps) if isinstance(stamps, Mapping) else {},
        stamped_headers=list(stamped) if isinstance(stamped, list) else None,
        replaced_task_nesting=nesting if isinstance(nesting, int) else 0,
        extra_headers=extra,
        reply_to=props.reply_to or None,
        correlation_id=props.correlation_id or task_id,
        priority=props.priority,
        delivery_mode=props.delivery_mode or 2,
        protocol=2,
    )


def _decode_v1(body: dict[str, Any], headers: dict[str, Any], props: Properties) -> TaskMessage:
    merged: dict[str, Any] = dict(body)
    merged.update({k: v for k, v in headers.items() if k != "compression"})
    name = merged.get("task")
    task_id = merged.get("id")
    if not isinstance(name, str) or not name:
        raise InvalidTaskMessage("task field is not a non-empty string")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidTaskMessage("task message has no id", task_name=name)
    args = merged.get("args", [])
    kwargs = merged.get("kwargs", {})
    if args is None:
        args = []
    if kwargs is None:
        kwargs = {}
    if not isinstance(args, list | tuple):
        raise InvalidTaskMessage("args must be a list", task_id=task_id, task_name=name)
    if not isinstance(kwargs, Mapping):
        raise InvalidTaskMessage("kwargs must be a mapping", task_id=task_id, task_name=name)
    hard, soft = _timelimit(merged.get("timelimit"))
    retries = merged.get("retries", 0)
    chord = merged.get("chord")
    group = merged.get("group") or merged.get("taskset")
    group_index = merged.get("group_index")
    return TaskMessage(
        task=name,
        id=task_id,
        args=list(args),
        kwargs={str(k): v for k, v in kwargs.items()},
        callbacks=_sig_list(merged.get("callbacks")),
        errbacks=_sig_list(merged.get("errbacks")),
        chain=None,
        chord=dict(chord) if isinstance(chord, Mapping) else None,
        eta=_opt_time(merged.get("eta"), "eta", task_id, name),
        expires=_opt_time(merged.get("expires"), "expires", task_id, name),
        retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
        time_limit=hard,
        soft_time_limit=soft,
        root_id=_opt_str(merged.get("root_id")) or task_id,
        parent_id=_opt_str(merged.get("parent_id")),
        group=_opt_str(group),
        group_index=group_index if isinstance(group_index, int) else None,
        shadow=_opt_str(merged.get("shadow")),
        origin=_opt_str(merged.get("origin")),
        ignore_result=bool(merged.get("ignore_result") or False),
        argsrepr=_opt_str(merged.get("argsrepr")),
        kwargsrepr=_opt_str(merged.get("kwargsrepr")),
        reply_to=props.reply_to or None,
        correlation_id=props.correlation_id or task_id,
        priority=props.priority,
        delivery_mode=props.delivery_mode or 2,
        protocol=1,
    )


def signature_to_message(
    sig: Mapping[str, Any],
    *,
    extra_args: Sequence[Any] = (),
    parent: TaskMessage | None = None,
    default_reply_to: str | None = None,
) -> tuple[TaskMessage, str | None]:
    """Build the message for a callback/errback/chain signature.

    ``extra_args`` are prepended unless the signature is immutable. Returns the message and the
    queue named in the signature's options (or None).
    """
    options = dict(sig.get("options") or {})
    immutable = bool(sig.get("immutable"))
    args = list(sig.get("args") or [])
    if not immutable:
        args = list(extra_args) + args
    task_id = options.get("task_id") or new_id()
    countdown = options.get("countdown")
    eta: datetime | None = None
    if isinstance(countdown, int | float) and not isinstance(countdown, bool):
        eta = utcnow() + timedelta(seconds=float(countdown))
    elif isinstance(options.get("eta"), str):
        eta = parse_iso(options["eta"])
    msg = TaskMessage(
        task=str(sig.get("task")),
        id=str(task_id),
        args=args,
        kwargs=dict(sig.get("kwargs") or {}),
        callbacks=_sig_list(options.get("link")),
        errbacks=_sig_list(options.get("link_error")),
        eta=eta,
        root_id=(parent.root_id if parent else None) or (parent.id if parent else None),
        parent_id=parent.id if parent else None,
        reply_to=options.get("reply_to") or default_reply_to,
        priority=options.get("priority"),
        group=options.get("group_id"),
        shadow=options.get("shadow"),
    )
    queue = options.get("queue")
    return msg, queue if isinstance(queue, str) else None
