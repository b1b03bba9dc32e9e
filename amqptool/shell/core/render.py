"""Turn an :class:`Outcome` into camqadm-style text or one JSON document. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amqptool.errors import BrokerError
from amqptool.shell.core.outcome import (
    Consumed,
    Deleted,
    Done,
    ExitRequest,
    Got,
    HelpText,
    Outcome,
    QueueStats,
    Summary,
    Table,
    Value,
)
from amqptool.shell.core.parser import UnknownCommandError

if TYPE_CHECKING:
    from amqptool.shell.core.messages import MessageView

__all__ = ["EMPTY_QUEUE", "json_document", "message_text", "value_text"]

EMPTY_QUEUE = "No messages in queue. basic.publish something."


def message_text(view: MessageView) -> str:
    """camqadm's dict-like view of a message (pretty-printed)."""
    import pprint  # loaded only when a message is shown

    return pprint.pformat(view.as_dict(), sort_dicts=False, width=100)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _consumed_text(value: Consumed) -> str:
    n = len(value.messages)
    what = _plural(n, "message")
    if value.mode == "peek":
        text = f"ok. {what} received and requeued"
    elif value.mode == "tap":
        text = f"ok. {what} tapped"
    elif value.mode == "manual":
        tags = ", ".join(str(m.delivery_info.get("delivery_tag")) for m in value.messages)
        text = f"ok. {what} received, left unacknowledged" + (f" (tags {tags})" if n else "")
    else:
        text = f"ok. {what} received and acknowledged"
    if value.reason == "interrupted":
        text += " (interrupted)"
    return text + "."


def value_text(value: Value, *, streamed: bool = True) -> str | None:
    """The text for a successful command (None: print nothing)."""
    if isinstance(value, Done):
        return "ok."
    if isinstance(value, QueueStats):
        return f"ok. queue:{value.queue} messages:{value.messages} consumers:{value.consumers}."
    if isinstance(value, Deleted):
        return f"ok. {value.messages} messages deleted."
    if isinstance(value, Got):
        return EMPTY_QUEUE if value.message is None else message_text(value.message)
    if isinstance(value, Consumed):
        summary = _consumed_text(value)
        if streamed:
            return summary
        return "\n".join([*(message_text(m) for m in value.messages), summary])
    if isinstance(value, HelpText):
        return value.text
    if isinstance(value, Table):
        from amqptool.shell.core.tables import table_text  # only for listings

        return table_text(value)
    if isinstance(value, Summary):
        return value.text
    if isinstance(value, ExitRequest):
        return None
    raise AssertionError(f"unknown value {value!r}")


def _value_json(value: Value) -> Any:
    if isinstance(value, QueueStats):
        return {"queue": value.queue, "messages": value.messages, "consumers": value.consumers}
    if isinstance(value, Deleted):
        return {"messages_deleted": value.messages}
    if isinstance(value, Got):
        if value.message is None:
            return {"message": None, "text": EMPTY_QUEUE}
        return {"message": value.message.to_json()}
    if isinstance(value, Consumed):
        return {
            "messages": [m.to_json() for m in value.messages],
            "count": len(value.messages),
            "mode": value.mode,
            "stopped_by": value.reason,
        }
    if isinstance(value, HelpText):
        return {"help": value.text}
    if isinstance(value, Table):
        return {value.what: list(value.rows), "count": len(value.rows)}
    if isinstance(value, Summary):
        return dict(value.data)
    return {}


def json_document(outcome: Outcome) -> str:
    """One JSON document (one line) for a command's outcome."""
    import json  # loaded only in --json mode

    doc: dict[str, Any] = {"command": outcome.command, "line": outcome.line, "ok": outcome.ok}
    if outcome.error is None:
        doc["result"] = _value_json(outcome.value) if outcome.value is not None else {}
    else:
        err = outcome.error
        info: dict[str, Any] = {
            "type": type(err).__name__,
            "message": err.message,
            "exit_code": outcome.exit_code,
        }
        if err.hint:
            info["hint"] = err.hint
        if isinstance(err, BrokerError) and err.reply_code is not None:
            info["reply_code"] = err.reply_code
            info["reply_text"] = err.reply_text
        if isinstance(err, UnknownCommandError):
            info["suggestions"] = err.suggestions
        doc["error"] = info
    if outcome.warnings:
        doc["warnings"] = list(outcome.warnings)
    return json.dumps(doc)
