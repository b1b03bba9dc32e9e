"""Queues that already exist: find out how they were declared, so we never declare them otherwise.

AMQP 0-9-1 has no "describe queue" method: a passive ``queue.declare`` says whether a queue
exists, not how it was declared. RabbitMQ does say it when refusing a declaration that differs
(406 PRECONDITION_FAILED), one argument at a time::

    inequivalent arg 'x-queue-type' for queue 'q' in vhost 'v':
        received 'classic' but current is 'quorum'
    inequivalent arg 'x-max-priority' for queue 'q' in vhost 'v':
        received none but current is the value '10' of type 'signedint'
    inequivalent arg 'durable' for queue 'q' in vhost 'v': received 'false' but current is 'true'

(each on one line).
:func:`inspect_queue` starts from what the caller would declare, and on each refusal takes the
broker's current value for the argument it names, on a throwaway channel each time, until the
broker accepts (the declaration then changes nothing: it is the queue's own). The result says
the queue's type (``classic``/``quorum``/``stream``), which decides the consumer's QoS mode:
RabbitMQ refuses to deliver from a quorum queue to a channel with a global prefetch (540).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amqptool.errors import ChannelClosedError

if TYPE_CHECKING:
    from amqptool.transport.connection import Connection

__all__ = ["QueueShape", "inspect_queue", "parse_inequivalence"]

MAX_STEPS = 16  # arguments learnt one per refusal; a queue has only a handful

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<key>[^']+)' for queue .* received (?P<received>.+?) "
    r"but current is (?P<current>.+)$",
    re.DOTALL,
)
_TYPED = re.compile(r"^the value '(?P<value>.*)' of type '(?P<type>\w+)'$", re.DOTALL)
_INTS = {"signedint", "long", "short", "byte", "unsignedbyte", "unsignedshort", "unsignedint"}
_FLAGS = ("durable", "auto_delete", "exclusive")
_ABSENT = object()


def _typed(value: str, kind: str) -> Any:
    if kind in _INTS:
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    if kind == "bool":
        return value == "true"
    if kind == "longstr":
        return value
    raise ValueError(f"cannot take a {kind} argument from the broker's text")


def parse_inequivalence(text: str) -> tuple[str, Any] | None:
    """``(argument, current value)`` from a 406 text; the value is ``None`` when the queue
    has no such argument. ``None`` when the text is not an inequivalence the code can read."""
    match = _INEQUIVALENT.search(text.strip())
    if match is None:
        return None
    key, current = match["key"], match["current"].strip()
    if current == "none":
        return key, None
    typed = _TYPED.match(current)
    try:
        if typed is not None:
            return key, _typed(typed["value"], typed["type"])
    except ValueError:
        return None
    if current.startswith("'") and current.endswith("'"):
        value = current[1:-1]
        return key, (value == "true") if key in _FLAGS else value
    return None


@dataclass(frozen=True)
class QueueShape:
    """How an existing queue was declared, as far as the broker told us."""

    name: str
    durable: bool
    auto_delete: bool
    arguments: dict[str, Any] = field(default_factory=dict)
    known: bool = True  # False: the broker's refusals could not be read to the end

    @property
    def queue_type(self) -> str:
        """``classic``, ``quorum``, ``stream``, or ``unknown``."""
        kind = self.arguments.get("x-queue-type")
        if isinstance(kind, str) and kind:
            return kind
        return "classic" if self.known else "unknown"


def _exists(conn: Connection, name: str) -> bool:
    ch = conn.channel()
    try:
        ch.queue_declare(name, passive=True)
    except ChannelClosedError as exc:
        if exc.reply_code == 404:
            return False
        raise
    finally:
        ch.close()
    return True


def inspect_queue(
    conn: Connection,
    name: str,
    *,
    durable: bool = True,
    auto_delete: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> QueueShape | None:
    """The existing queue ``name`` (None if there is none). The declaration the caller would
    make is the first guess; other channels of ``conn`` are untouched by the refusals."""
    if not _exists(conn, name):
        return None
    flags: dict[str, bool] = {"durable": durable, "auto_delete": auto_delete}
    args = dict(arguments or {})
    for _ in range(MAX_STEPS):
        ch = conn.channel()
        try:
            ch.queue_declare(name, arguments=args, **flags)
        except ChannelClosedError as exc:
            found = parse_inequivalence(exc.reply_text or "") if exc.reply_code == 406 else None
            if found is None:
                break
            key, value = found
            if key in flags:
                flags[key] = bool(value)
            elif key == "exclusive":
                break  # another connection's exclusive queue: nothing to learn or consume
            elif value is None:
                args.pop(key, None)
            else:
                args[key] = value
            continue
        finally:
            ch.close()
        return QueueShape(name, flags["durable"], flags["auto_delete"], args)
    return QueueShape(name, flags["durable"], flags["auto_delete"], args, known=False)
