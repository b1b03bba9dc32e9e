"""Pure bookkeeping of the pipelined client (:mod:`amqptool.client.sending`): the confirm
mode, and the one-line errors that name the tasks the broker refused."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

from amqptool.errors import AmqpToolError, PublishError, UsageError

if TYPE_CHECKING:
    from amqptool.transport import Pending

__all__ = ["CONFIRM_MODES", "SHOWN_IDS", "check_confirm_mode", "name_ids", "refusal", "task_id_of"]

CONFIRM_MODES = ("each", "pipelined")
SHOWN_IDS = 5  # task ids named in one error line; the rest are counted


def check_confirm_mode(mode: str) -> str:
    if mode not in CONFIRM_MODES:
        raise UsageError(f"confirm must be 'each' or 'pipelined', not {mode!r}")
    return mode


def name_ids(ids: Sequence[str]) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 7 more``: task ids for one error line."""
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown if len(ids) <= SHOWN_IDS else f"{shown} and {len(ids) - SHOWN_IDS} more"


def task_id_of(item: Pending) -> str:
    data = item.data
    return str(data[0]) if isinstance(data, tuple) else "?"


def refusal(items: Sequence[Pending]) -> AmqpToolError:
    """One error for messages the broker refused, on one line, naming their task ids.

    One message: its own error (a PublishError, ChannelClosedError... so ``except`` clauses
    work as in ``"each"`` mode), its text prefixed with the task id. Several: a
    :class:`~amqptool.errors.PublishError` naming them all (by id) and the first reason."""
    errors = [item.error for item in items if item.error is not None]
    if not errors:
        raise ValueError("refusal() of messages that were not refused")
    first = errors[0]
    reason = " ".join(first.message.split())
    if len(items) == 1:
        one = copy.copy(first)  # the item keeps its own error as the broker gave it
        one.message = f"task {task_id_of(items[0])}: {reason}"
        one.args = (one.message,)
        return one
    ids = [task_id_of(item) for item in items]
    return PublishError(
        f"the broker did not take {len(items)} tasks: {name_ids(ids)} (first: {reason})",
        reply_code=getattr(first, "reply_code", None),
        reply_text=getattr(first, "reply_text", None),
        hint=first.hint,
    )
