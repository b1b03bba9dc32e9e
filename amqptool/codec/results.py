"""Task results in the ``rpc://`` format a Celery client's ``AsyncResult`` reads (§2)."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.serialization import dumps, json_dumps, loads
from amqptool.codec.times import format_iso, utcnow
from amqptool.errors import DecodeError

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "PENDING",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "ResultTooLarge",
    "decode_exception",
    "encode_exception",
    "encode_result",
    "result_body",
    "result_envelope",
    "too_large_failure",
]

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
RETRY = "RETRY"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, REVOKED, REJECTED, RETRY})

# Where Celery's own exception classes live, so a Celery client re-raises its own types.
_CELERY_EXC_MODULE = "celery.exceptions"
CELERY_EXCEPTIONS = frozenset(
    {
        "NotRegistered",
        "TaskRevokedError",
        "TimeLimitExceeded",
        "SoftTimeLimitExceeded",
        "MaxRetriesExceededError",
        "Retry",
        "Reject",
        "Ignore",
        "WorkerLostError",
    }
)


def _jsonable(value: Any) -> Any:
    try:
        json_dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        try:
            return repr(value)
        except Exception:  # a user object's __repr__ may raise anything
            return f"<unrepresentable {type(value).__name__}>"
    return value


def encode_exception(exc: BaseException) -> dict[str, Any]:
    """``{"exc_type", "exc_message", "exc_module"}``; args that JSON can't carry become reprs."""
    cls = type(exc)
    module = getattr(cls, "__amqptool_module__", None) or cls.__module__
    name = cls.__qualname__
    if name in CELERY_EXCEPTIONS and module.startswith(("worker", "amqptool")):
        module = _CELERY_EXC_MODULE
    args = [_jsonable(a) for a in exc.args]
    return {"exc_type": name, "exc_message": args, "exc_module": module}


_SYNTHESIZED: dict[tuple[str, str], type[Exception]] = {}


def decode_exception(data: Any) -> BaseException:
    """Rebuild an exception from its encoded form, as a Celery client does.

    The class is looked up by module (only one already imported: a result never makes us import
    anything) and qualname; a missing one is synthesized (a subclass of
    ``Exception`` with that name); a name that resolves to something other than an exception
    class gives a plain ``Exception`` (never runs arbitrary callables).
    """
    if isinstance(data, BaseException):
        return data
    if not isinstance(data, Mapping) or "exc_type" not in data:
        return Exception(data)
    exc_type = str(data.get("exc_type"))
    module = str(data.get("exc_module") or "builtins")
    message = data.get("exc_message", [])
    args = list(message) if isinstance(message, list | tuple) else [message]
    cls = _lookup_exception(module, exc_type)
    try:
        return cls(*args)
    except Exception:  # constructor signatures vary; fall back to a look-alike
        return _synthesize(module, exc_type)(*args)


def _lookup_exception(module: str, qualname: str) -> type[BaseException]:
    target: Any = None
    if module == "builtins":
        target = getattr(builtins, qualname, None)
    else:
        # Only modules already loaded, as Celery does since CVE-2021-23727: importing a module
        # named by a message would run that module's code for whoever sent the result.
        target = sys.modules.get(module)
        if target is not None:
            for part in qualname.split("."):
                target = getattr(target, part, None)
                if target is None:
                    break
    if isinstance(target, type) and issubclass(target, BaseException):
        return target
    return _synthesize(module, qualname)


def _synthesize(module: str, qualname: str) -> type[Exception]:
    key = (module, qualname)
    cls = _SYNTHESIZED.get(key)
    if cls is None:
        name = qualname.rsplit(".", 1)[-1] or "Exception"
        cls = type(name, (Exception,), {"__module__": module})
        _SYNTHESIZED[key] = cls
    return cls


def result_body(
    task_id: str,
    status: str,
    result: Any = None,
    *,
    traceback: str | None = None,
    children: list[Any] | None = None,
    date_done: datetime | None = None,
    group_id: str | None = None,
    parent_id: str | None = None,
) -> dict[str, Any]:
    """The body of one rpc:// state message (§2.2)."""
    if isinstance(result, BaseException):
        result = encode_exception(result)
    if status in READY_STATES and date_done is None:
        date_done = utcnow()
    body: dict[str, Any] = {
        "status": status,
        "result": result,
        "traceback": traceback,
        "children": children or [],
        "date_done": format_iso(date_done) if date_done else None,
    }
    if group_id:
        body["group_id"] = group_id
    if parent_id:
        body["parent_id"] = parent_id
    body["task_id"] = task_id  # last, after group_id/parent_id, as Celery orders them
    return body


def encode_result(
    body: dict[str, Any], *, reply_to: str, correlation_id: str, serializer: str = "json"
) -> Envelope:
    """The envelope for a result: default exchange, routing key = ``reply_to``."""
    try:
        data, ctype, cenc = dumps(body, serializer)
    except Exception:  # a result JSON can't carry is sent as its repr
        safe = dict(body)
        safe["result"] = _jsonable(body.get("result"))
        data, ctype, cenc = dumps(safe, serializer)
    return result_envelope(data, ctype, cenc, reply_to=reply_to, correlation_id=correlation_id)


def result_envelope(
    data: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    reply_to: str,
    correlation_id: str,
    delivery_mode: int = 1,
) -> Envelope:
    """An encoded result body as its rpc:// message (§2.1): the default exchange, routing key
    ``reply_to``, ``correlation_id``, transient unless ``delivery_mode`` 2, priority 0."""
    props = Properties(
        content_type=content_type,
        content_encoding=content_encoding,
        correlation_id=correlation_id,
        delivery_mode=delivery_mode,
        priority=0,
    )
    return Envelope(body=data, properties=props, exchange="", routing_key=reply_to)


class ResultTooLarge(Exception):  # the name a client sees as exc_type
    """A task's result was bigger than the broker accepts; it was replaced by this failure."""


def too_large_failure(env: Envelope, limit: int) -> Envelope | None:
    """For a result message over ``limit`` bytes: a FAILURE result for the same task saying so
    ("result is N bytes, the broker accepts M"). None if ``env`` is not a result message."""
    try:
        body = loads(env.body, env.properties.content_type, env.properties.content_encoding)
    except DecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("task_id"), str):
        return None
    if "status" not in body:
        return None
    why = ResultTooLarge(f"result is {len(env.body)} bytes, the broker accepts {limit}")
    failure = result_body(
        body["task_id"],
        FAILURE,
        why,
        group_id=body.get("group_id"),
        parent_id=body.get("parent_id"),
    )
    return encode_result(
        failure,
        reply_to=env.routing_key,
        correlation_id=env.properties.correlation_id or body["task_id"],
    )
