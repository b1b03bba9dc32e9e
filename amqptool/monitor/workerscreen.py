"""The worker screen (Enter on a worker): pool, queues, registered tasks with their limits,
stats, config and system, asked through remote control; and its actions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import ClassVar, Protocol

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Label, Static

from amqptool.monitor.actions import Action, ControlPort, valid_rate
from amqptool.monitor.bars import KeyBar
from amqptool.monitor.workerinfo import (
    WorkerInfo,
    add_consumer_action,
    cancel_consumer_action,
    fetch_worker_info,
    pool_action,
    time_limit_action,
    worker_rate_limit_action,
)

__all__ = ["PromptScreen", "WorkerDetailScreen", "render_worker"]


class _Runner(Protocol):
    control: ControlPort | None

    def confirm_then_run(self, action: Action) -> None: ...


def _rows(title: str, rows: list[tuple[str, str]], error: str | None) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(Text(label), Text(value))
    return _section(title, table, error)


def _section(title: str, body: RenderableType, error: str | None) -> RenderableType:
    head = Text(title, style="bold underline")
    if error:
        return Group(head, Text(f"no answer: {error}", style="red"), Text(""))
    return Group(head, body, Text(""))


def render_worker(info: WorkerInfo) -> RenderableType:
    """The worker screen's body (a pure function of :class:`WorkerInfo`)."""
    queues = Table("queue", "exchange", "routing key", box=None, show_edge=False)
    for name, exchange, key in info.queues:
        queues.add_row(Text(name), Text(exchange), Text(key))
    tasks = Table("task", "rate limit", "time limit", "soft limit", box=None, show_edge=False)
    for task in info.registered:
        tasks.add_row(
            Text(task.name),
            Text(task.rate_limit),
            Text(task.time_limit),
            Text(task.soft_time_limit),
        )
    err = info.errors.get
    parts = [
        _rows("pool", info.pool, err("pool")),
        _section("queues consumed", queues, err("queues")),
        _section(f"registered tasks ({len(info.registered)})", tasks, err("registered")),
        _rows("stats", info.stats, err("stats")),
        _rows("config", info.config, err("config")),
        _section("system", Text(info.system), err("system")),
    ]
    return Group(*parts)


class WorkerInfoFetched(Message):
    def __init__(self, info: WorkerInfo) -> None:
        super().__init__()
        self.info = info


class WorkerDetailScreen(Screen[None]):
    """One worker in detail; ``r`` asks again, the other keys act on it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        Binding("r", "refresh_info", "Refresh"),
        Binding("plus", "pool(1)", "Grow pool"),
        Binding("minus", "pool(-1)", "Shrink pool"),
        Binding("a", "add_consumer", "Add consumer"),
        Binding("c", "cancel_consumer", "Cancel consumer"),
        Binding("l", "rate_limit", "Rate limit"),
        Binding("t", "time_limit", "Time limit"),
    ]
    DEFAULT_CSS = """
    WorkerDetailScreen #worker-title { height: 1; background: $panel; padding: 0 1; }
    WorkerDetailScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, node: str, runner: _Runner, timeout: float = 2.0) -> None:
        super().__init__()
        self.node = node
        self.runner = runner
        self.timeout = timeout
        self.info: WorkerInfo | None = None
        self.fetches = 0

    def compose(self) -> ComposeResult:
        yield Static(Text(f"worker {self.node}: asking…", style="bold"), id="worker-title")
        with VerticalScroll():
            yield Static("", id="worker-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_refresh_info()

    def action_refresh_info(self) -> None:
        control = self.runner.control
        if control is None:
            self._title(f"worker {self.node}: no control connection", "bold red")
            return
        self._title(f"worker {self.node}: asking…", "bold")
        self._fetch(control)

    @work(thread=True, exclusive=True, group="worker-info", exit_on_error=False)
    def _fetch(self, control: ControlPort) -> None:
        self.post_message(WorkerInfoFetched(fetch_worker_info(control, self.node, self.timeout)))

    def on_worker_info_fetched(self, message: WorkerInfoFetched) -> None:
        self.info = message.info
        self.fetches += 1
        missing = len(message.info.errors)
        note = f"  ({missing} section(s) did not answer)" if missing else ""
        self._title(f"worker {self.node}{note}   r refresh", "bold")
        with contextlib.suppress(NoMatches):
            self.query_one("#worker-body", Static).update(render_worker(message.info))

    def _title(self, text: str, style: str) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one("#worker-title", Static).update(Text(text, style=style))

    # ------------------------------------------------------------------ actions

    def action_pool(self, delta: int) -> None:
        self.runner.confirm_then_run(pool_action(self.node, delta))

    def _ask(
        self, prompt: str, check: Callable[[str], str | None], then: Callable[[str], None]
    ) -> None:
        def answered(value: str | None) -> None:
            if value:
                then(value)

        self.app.push_screen(PromptScreen(prompt, check), answered)

    def action_add_consumer(self) -> None:
        self._ask(
            f"Queue for {self.node} to consume from:",
            _one_word,
            lambda q: self.runner.confirm_then_run(add_consumer_action(self.node, q)),
        )

    def action_cancel_consumer(self) -> None:
        known = self.info.queue_names if self.info else []
        self._ask(
            f"Queue {self.node} stops consuming from ({', '.join(known) or 'none known'}):",
            _one_word,
            lambda q: self.runner.confirm_then_run(cancel_consumer_action(self.node, q)),
        )

    def action_rate_limit(self) -> None:
        def run(text: str) -> None:
            task, rate = text.split()
            self.runner.confirm_then_run(worker_rate_limit_action(self.node, task, rate))

        self._ask("TASK RATE (e.g. app.add 10/m; 0 removes the limit):", _task_rate, run)

    def action_time_limit(self) -> None:
        def run(text: str) -> None:
            task, soft, hard = text.split()
            self.runner.confirm_then_run(
                time_limit_action(self.node, task, float(soft), float(hard))
            )

        self._ask("TASK SOFT HARD in seconds (e.g. app.add 10 20):", _task_limits, run)


def _one_word(text: str) -> str | None:
    return None if len(text.split()) == 1 else "one queue name, no spaces"


def _task_rate(text: str) -> str | None:
    parts = text.split()
    if len(parts) != 2 or not valid_rate(parts[1]):
        return "TASK RATE, the rate as N, N/s, N/m or N/h"
    return None


def _task_limits(text: str) -> str | None:
    parts = text.split()
    try:
        soft, hard = float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return "TASK SOFT HARD, in seconds"
    if len(parts) != 3 or not (0 < soft <= hard < 10**7):
        return "0 < SOFT <= HARD (seconds)"
    return None


class PromptScreen(ModalScreen[str | None]):
    """One line of input, checked before it is accepted (Escape cancels)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical {
        width: 90%; max-width: 100; height: auto; border: thick $accent; background: $surface;
        padding: 1 2;
    }
    PromptScreen #prompt-error { color: $error; height: auto; }
    """

    def __init__(self, prompt: str, check: Callable[[str], str | None]) -> None:
        super().__init__()
        self.prompt = prompt
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.prompt))
            yield Input(id="prompt-input")
            yield Label("", id="prompt-error")

    def on_mount(self) -> None:
        self.query_one("#prompt-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        problem = self.check(value)
        if problem:
            self.query_one("#prompt-error", Label).update(Text(problem))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
