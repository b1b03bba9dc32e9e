"""The monitor's remote-control keys: revoke, terminate, rate limit, ping, shutdown.

A mixin of :class:`~amqptool.monitor.app.MonitorApp`: destructive actions ask first, every
command runs in a thread worker through the :class:`ControlPort`, and its outcome comes back as
a message and a notification, whatever happened (no reply, an error reply, a dead broker).
"""

from __future__ import annotations

from textual import work
from textual.app import App

from amqptool.monitor.actions import (
    Action,
    ControlPort,
    Outcome,
    perform,
    ping_action,
    rate_limit_action,
    revoke_action,
    shutdown_action,
)
from amqptool.monitor.core.model import Task
from amqptool.monitor.messages import ActionFinished
from amqptool.monitor.screens import ConfirmScreen, RateLimitScreen
from amqptool.monitor.workerscreen import WorkerDetailScreen

__all__ = ["ActionKeys"]


class ActionKeys(App[int]):
    """Key actions that send remote-control commands (needs a selection and a control port)."""

    control: ControlPort | None
    outcomes: list[Outcome]

    def selected_task(self) -> Task | None:
        raise NotImplementedError

    def selected_worker(self) -> str | None:
        raise NotImplementedError

    def action_revoke_task(self) -> None:
        self._revoke(terminate=False)

    def action_terminate_task(self) -> None:
        self._revoke(terminate=True)

    def _revoke(self, *, terminate: bool) -> None:
        task = self.selected_task()
        if task is None:
            self.notify("no task selected", severity="warning", markup=False)
            return
        self.confirm_then_run(revoke_action(task.uuid, terminate=terminate))

    def action_rate_limit(self) -> None:
        task = self.selected_task()
        if task is None or not task.name:
            self.notify("select a task with a known name first", severity="warning", markup=False)
            return
        name = task.name

        def chosen(rate: str | None) -> None:
            if rate:
                self.send_action(rate_limit_action(name, rate))

        self.push_screen(RateLimitScreen(name), chosen)

    def action_ping_worker(self) -> None:
        node = self.selected_worker()
        if node is None:
            self.notify("no worker selected", severity="warning", markup=False)
            return
        self.send_action(ping_action(node))

    def action_shutdown_worker(self) -> None:
        node = self.selected_worker()
        if node is None:
            self.notify("no worker selected", severity="warning", markup=False)
            return
        self.confirm_then_run(shutdown_action(node))

    def confirm_then_run(self, action: Action) -> None:
        if action.confirm is None:
            self.send_action(action)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.send_action(action)

        self.push_screen(ConfirmScreen(action.confirm), answered)

    def send_action(self, action: Action) -> None:
        if self.control is None:
            self.notify(f"{action.title}: no control connection", severity="error", markup=False)
            return
        self.notify(f"{action.title}…", timeout=2, markup=False)
        self._perform(action)

    @work(thread=True, group="actions", exit_on_error=False)
    def _perform(self, action: Action) -> None:
        assert self.control is not None
        self.post_message(ActionFinished(perform(self.control, action)))

    def on_action_finished(self, message: ActionFinished) -> None:
        outcome = message.outcome
        self.outcomes.append(outcome)
        severity = outcome.severity if outcome.severity in ("warning", "error") else "information"
        self.notify(outcome.message, severity=severity, timeout=8, markup=False)  # type: ignore[arg-type]  # checked above
        screen = self.screen_stack[-1] if self.screen_stack else None  # none left at exit
        if isinstance(screen, WorkerDetailScreen) and outcome.action.destination == [screen.node]:
            screen.action_refresh_info()  # show what the action changed
