"""Remote-control actions from the monitor: revoke, rate limit, ping, shutdown.

The app talks to workers through :class:`ControlPort`, a small interface of our own, so tests
inject a fake that records calls. :class:`BrokerControl` is the real one, over
:class:`amqptool.control.client.ControlClient` (imported when first used, so this module stays
light and pure). :func:`perform` runs one action and *never raises*: a failed or unanswered
action becomes an :class:`Outcome` the app shows as a notification (``celery events`` dies here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from amqptool.errors import AmqpToolError
from amqptool.monitor.core.clean import visible

if TYPE_CHECKING:
    from amqptool.settings import BrokerSettings

__all__ = [
    "Action",
    "BrokerControl",
    "ControlPort",
    "Outcome",
    "active_queues_action",
    "perform",
    "ping_action",
    "rate_limit_action",
    "revoke_action",
    "shutdown_action",
    "valid_rate",
]

_RATE = re.compile(r"^\s*\d+(\.\d+)?\s*(/\s*[smh])?\s*$")


class ControlPort(Protocol):
    """What the monitor needs from a remote-control client."""

    def call(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> dict[str, Any]: ...

    def cast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Action:
    """One remote-control command as the monitor sends it."""

    title: str  # shown in confirmations and notifications
    method: str
    arguments: dict[str, Any] = field(default_factory=dict)
    destination: list[str] | None = None
    reply: bool = True  # False: a cast (shutdown never replies)
    confirm: str | None = None  # a question for destructive actions
    timeout: float = 1.0


@dataclass(frozen=True)
class Outcome:
    action: Action
    message: str
    severity: str  # information | warning | error
    replies: dict[str, Any] = field(default_factory=dict)


def valid_rate(text: str) -> bool:
    """Celery's rate-limit syntax: ``10``, ``10/s``, ``2.5/m``, ``100/h``; ``0`` disables."""
    return bool(_RATE.match(text))


def revoke_action(task_id: str, *, terminate: bool = False, signal: str = "SIGTERM") -> Action:
    arguments: dict[str, Any] = {"task_id": task_id}
    if terminate:
        arguments.update(terminate=True, signal=signal)
    verb = f"terminate ({signal})" if terminate else "revoke"
    question = f"Really {verb} task {task_id}?"
    if terminate:
        question += (
            f" {signal} stops it only on a prefork pool; a threads or solo pool cannot stop a"
            " running task (the worker's reply says so) and the task runs to its end."
        )
    return Action(
        title=f"{verb} task {task_id}",
        method="revoke",
        arguments=arguments,
        confirm=question,
    )


def rate_limit_action(task_name: str, rate: str) -> Action:
    rate = "".join(rate.split())
    return Action(
        title=f"rate limit {task_name} = {rate}",
        method="rate_limit",
        arguments={"task_name": task_name, "rate_limit": rate},
    )


def ping_action(node: str) -> Action:
    return Action(title=f"ping {node}", method="ping", destination=[node])


def shutdown_action(node: str) -> Action:
    return Action(
        title=f"shutdown {node}",
        method="shutdown",
        destination=[node],
        reply=False,
        confirm=f"Really shut down worker {node}? (a warm shutdown: it finishes running tasks)",
    )


def active_queues_action() -> Action:
    return Action(title="active queues", method="active_queues")


def _reply_text(reply: Any) -> tuple[str, bool]:
    """(text, is_error) for one node's reply."""
    if isinstance(reply, dict):
        if "error" in reply:
            return str(reply["error"]), True
        if "ok" in reply:
            return str(reply["ok"]), False
    if reply is None:
        return "done", False
    return str(reply), False


def describe(action: Action, replies: dict[str, Any]) -> tuple[str, str]:
    """(message, severity) for the replies to ``action``."""
    if not action.reply:
        return f"{action.title}: sent", "information"
    if not replies:
        where = ", ".join(action.destination) if action.destination else "any worker"
        return (
            f"{action.title}: no reply from {where} within {action.timeout:g}s",
            "warning",
        )
    lines: list[str] = []
    errors = 0
    for node in sorted(replies):
        text, is_error = _reply_text(replies[node])
        errors += is_error
        lines.append(visible(f"{node}: {'error: ' if is_error else ''}{text}"))
    severity = "error" if errors == len(replies) else "warning" if errors else "information"
    return f"{action.title}\n" + "\n".join(lines), severity


def perform(control: ControlPort, action: Action) -> Outcome:
    """Send ``action`` and describe what came back. Never raises."""
    try:
        if action.reply:
            replies = control.call(
                action.method,
                dict(action.arguments),
                destination=action.destination,
                timeout=action.timeout,
                limit=len(action.destination) if action.destination else None,
            )
        else:
            control.cast(action.method, dict(action.arguments), destination=action.destination)
            replies = {}
    except AmqpToolError as exc:
        return Outcome(action, f"{action.title} failed: {exc.user_line()}", "error")
    except Exception as exc:  # the screen must survive any client bug
        return Outcome(action, f"{action.title} failed: {type(exc).__name__}: {exc}", "error")
    if not isinstance(replies, dict):
        return Outcome(action, f"{action.title}: unexpected reply {replies!r}", "error")
    message, severity = describe(action, replies)
    return Outcome(action, message, severity, replies)


class BrokerControl:
    """The real :class:`ControlPort`: one short-lived ControlClient per command.

    Each command opens its own connection on the calling thread and closes it, so commands may
    run from any thread worker (pika's one-connection-per-thread rule holds).
    """

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings

    def call(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        from amqptool.control.client import ControlClient

        with ControlClient(self.settings) as client:
            return client.call(
                method, arguments, destination=destination, timeout=timeout, limit=limit
            )

    def cast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
    ) -> None:
        from amqptool.control.client import ControlClient

        with ControlClient(self.settings) as client:
            client.cast(method, arguments, destination=destination)
