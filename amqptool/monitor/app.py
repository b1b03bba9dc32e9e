"""The Textual front end of ``amqptool monitor``: a thin adapter over state + selectors.

Threads (STYLE.md rule 8): the event feed, the queue poller, control actions and the SQLite
store run in thread workers and *post past-tense messages*; the UI thread owns the
:class:`MonitorState`, folds each batch in one call, and redraws at a capped rate
(``refresh_hz``) only what changed. Nothing here reads the clock directly: ``clock`` is given
(tests freeze it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, ClassVar, Protocol

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from amqptool.errors import AmqpToolError
from amqptool.monitor.actions import (
    Action,
    ControlPort,
    Outcome,
    active_queues_action,
    perform,
    ping_action,
    rate_limit_action,
    revoke_action,
    shutdown_action,
)
from amqptool.monitor.feed import FeedBatch, FeedStatus
from amqptool.monitor.queues import UNACKED_NOTE, QueueDepth, queues_from_replies
from amqptool.monitor.screens import ConfirmScreen, HelpScreen, RateLimitScreen, TaskDetailScreen
from amqptool.monitor.selectors import (
    SortSpec,
    TaskDetail,
    TaskFilter,
    WorkerRow,
    header_view,
    select_tasks,
    task_detail,
    task_row,
    worker_rows,
)
from amqptool.monitor.state import MonitorState, Task
from amqptool.monitor.store import TaskStore, record_of
from amqptool.monitor.widgets import Column, GridRow, GridTable, MonitorHeader

__all__ = ["FeedLike", "MonitorApp", "QueueProbeLike"]


class FeedLike(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


class QueueProbeLike(Protocol):
    def probe(self, names: list[str]) -> list[QueueDepth]: ...

    def close(self) -> None: ...


FeedFactory = Callable[[Callable[[FeedBatch], None], Callable[[FeedStatus], None]], FeedLike]

TASK_GRID_COLUMNS = (
    Column("uuid", "UUID", width=36, compact=13),
    Column("name", "Name", min_width=12, weight=3),
    Column("state", "State", width=9),
    Column("worker", "Worker", min_width=10, weight=2),
    Column("received", "Received", width=8),
    Column("started", "Started", width=8),
    Column("runtime", "Runtime", width=8),
    Column("args", "Args", min_width=8, weight=2),
)
WORKER_GRID_COLUMNS = (
    Column("hostname", "Worker", min_width=12, weight=1),
    Column("status", "Status", width=7),
    Column("active", "Active", width=6),
    Column("processed", "Processed", width=9),
    Column("loadavg", "Load avg", width=14, compact=5),
    Column("heartbeat", "Heartbeat", width=9),
    Column("version", "Software", min_width=16, weight=1),
)
QUEUE_GRID_COLUMNS = (
    Column("name", "Queue", min_width=8, weight=1),
    Column("ready", "Ready", width=7),
    Column("unacked", "Unacked", width=7),
    Column("consumers", "Consumers", width=9),
)

#: Keys of the tables themselves (the app's own bindings are listed from BINDINGS).
TABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ j k", "move in a table"),
    ("PgUp PgDn", "page up / down"),
    ("Home End g G", "first / last row"),
    ("Enter", "task detail (tasks table)"),
    ("Tab / Shift+Tab", "next / previous table"),
    ("click a header", "sort by that column (again: reverse)"),
)


# ---------------------------------------------------------------------------- messages


class EventsArrived(Message):
    def __init__(self, batch: FeedBatch) -> None:
        super().__init__()
        self.batch = batch


class FeedChanged(Message):
    def __init__(self, status: FeedStatus) -> None:
        super().__init__()
        self.status = status


class QueuesUpdated(Message):
    def __init__(self, depths: list[QueueDepth], note: str = "") -> None:
        super().__init__()
        self.depths = depths
        self.note = note


class ActionFinished(Message):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


class StoreMatches(Message):
    def __init__(self, filt: TaskFilter, tasks: list[Task]) -> None:
        super().__init__()
        self.filt = filt
        self.tasks = tasks


@dataclass
class MonitorOptions:
    broker: str = "amqp://"  # already redacted
    queues: tuple[str, ...] = ()  # -Q: fixed queue list (else from active_queues)
    refresh_hz: float = 4.0
    queue_interval: float = 2.0
    discovery_interval: float = 30.0
    store_interval: float = 2.0
    tz: tzinfo | None = None


class MonitorApp(App[int]):
    """Header, workers, queues and tasks; detail, help and actions on keys."""

    TITLE = "amqptool monitor"
    CSS = """
    #top { height: 9; }
    #workers { width: 2fr; height: 100%; border-right: solid $panel-lighten-2; }
    #queues-box { width: 1fr; height: 100%; }
    #queues { height: 1fr; }
    #queues-note { height: 1; color: $text-muted; padding: 0 1; }
    #filter { display: none; height: 3; }
    #filter.shown { display: block; }
    #tasks { height: 1fr; border-top: solid $panel-lighten-2; }
    #status { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse sort"),
        Binding("d", "detail", "Detail"),
        Binding("x", "revoke_task", "Revoke"),
        Binding("X", "terminate_task", "Terminate"),
        Binding("l", "rate_limit", "Rate limit"),
        Binding("p", "ping_worker", "Ping worker"),
        Binding("K", "shutdown_worker", "Shutdown worker"),
        Binding("w", "focus_workers", "Workers", show=False),
        Binding("t", "focus_tasks", "Tasks", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        state: MonitorState,
        *,
        options: MonitorOptions | None = None,
        feed_factory: FeedFactory | None = None,
        control: ControlPort | None = None,
        queue_probe_factory: Callable[[], QueueProbeLike] | None = None,
        store: TaskStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.state = state
        self.options = options or MonitorOptions()
        self.feed_factory = feed_factory
        self.control = control
        self.queue_probe_factory = queue_probe_factory
        self.store = store
        self.clock = clock
        self.filter = TaskFilter()
        self.sort = SortSpec()
        self.feed_status = FeedStatus("connecting" if feed_factory else "stopped")
        self.stored_matches: list[Task] = []
        self.queue_names: list[str] = list(self.options.queues)
        self.outcomes: list[Outcome] = []  # every action's outcome, for tests and the log
        self._feed: FeedLike | None = None
        self._stop = threading.Event()
        self._shown_version = -1
        self._shown_query: tuple[TaskFilter, SortSpec, int] | None = None
        self._batches = 0

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        tz = self.options.tz
        yield MonitorHeader(id="header")
        with Horizontal(id="top"):
            yield GridTable(
                WORKER_GRID_COLUMNS,
                _worker_grid_row,
                _worker_key,
                style_column="status",
                empty_text="no workers seen yet (waiting for heartbeats)",
                id="workers",
            )
            with Vertical(id="queues-box"):
                yield GridTable(
                    QUEUE_GRID_COLUMNS,
                    _queue_grid_row,
                    _queue_key,
                    empty_text="no queues known yet",
                    id="queues",
                )
                yield Static(UNACKED_NOTE, id="queues-note")
        yield Input(placeholder="filter: state:FAILURE name:add worker:w1 words", id="filter")
        yield GridTable(
            TASK_GRID_COLUMNS,
            lambda task: _task_grid_row(task, tz, self.state),
            _task_key,
            style_column="state",
            empty_text="no tasks seen yet",
            id="tasks",
        )
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tasks", GridTable).focus()
        self.refresh_views(force=True)
        self.set_interval(1.0 / self.options.refresh_hz, self._tick)
        if self.feed_factory is not None:
            self._run_feed()
        if self.queue_probe_factory is not None:
            self._poll_queues()
        if self.store is not None:
            self.set_interval(self.options.store_interval, self.save_store)

    def on_unmount(self) -> None:
        self._stop.set()
        feed = self._feed
        if feed is not None:
            feed.stop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Main-screen keys only work on the main screen; the detail screen keeps a few."""
        if action not in _OWN_ACTIONS:
            return True
        screen = self.screen
        if isinstance(screen, TaskDetailScreen):
            return action in _DETAIL_ACTIONS
        return not isinstance(screen, ModalScreen)

    # ------------------------------------------------------------------ views

    @property
    def tasks_table(self) -> GridTable:
        return self.query_one("#tasks", GridTable)

    @property
    def workers_table(self) -> GridTable:
        return self.query_one("#workers", GridTable)

    def _tick(self) -> None:
        now = self.clock()
        self.state.expire(now)
        self.refresh_views(now)

    def refresh_views(self, now: float | None = None, *, force: bool = False) -> None:
        """Redraw from the selectors; the task list is rebuilt only when something changed."""
        now = self.clock() if now is None else now
        status = self.feed_status
        connection = status.state + (f": {status.detail}" if status.detail else "")
        if status.state == "connected":
            connection = "connected"
        elif status.state == "disconnected" and status.attempt:
            connection = f"disconnected (retry {status.attempt}): {status.detail}"
        view = header_view(
            self.state,
            now,
            broker=self.options.broker,
            connection=connection,
            connected=status.connected,
        )
        self.query_one(MonitorHeader).show(view)
        self.workers_table.set_items(worker_rows(self.state, now))
        query = (self.filter, self.sort, len(self.stored_matches))
        if force or self.state.version != self._shown_version or query != self._shown_query:
            self._shown_version = self.state.version
            self._shown_query = query
            tasks = select_tasks(self.state, self.filter, self.sort, extra=self.stored_matches)
            table = self.tasks_table
            table.set_items(tasks)
            table.set_sort(self.sort.column, self.sort.descending)
            shown = f"{len(tasks)} task(s)"
            if not self.filter.empty:
                shown += f" match '{self.filter.describe()}'"
                if self.store is not None:
                    shown += (
                        f" ({sum(1 for t in tasks if t.uuid not in self.state.tasks)} from --state)"
                    )
            evicted = f"   evicted {self.state.evicted}" if self.state.evicted else ""
            self.query_one("#status", Static).update(
                f"{shown}   sort: {self.sort.describe()}{evicted}   ? help"
            )

    def task_detail_for(self, uuid: str) -> TaskDetail | None:
        task = self.state.tasks.get(uuid) or next(
            (t for t in self.stored_matches if t.uuid == uuid), None
        )
        return None if task is None else task_detail(task, self.clock(), self.options.tz)

    def selected_task(self) -> Task | None:
        screen = self.screen
        if isinstance(screen, TaskDetailScreen):
            return self.state.tasks.get(screen.uuid) or next(
                (t for t in self.stored_matches if t.uuid == screen.uuid), None
            )
        item = self.tasks_table.cursor_item
        return item if isinstance(item, Task) else None

    def selected_worker(self) -> str | None:
        item = self.workers_table.cursor_item
        if isinstance(item, WorkerRow):
            return item.hostname
        return None

    # ------------------------------------------------------------------ feed

    def ingest(self, batch: FeedBatch) -> None:
        """Fold one batch into the state (on the UI thread)."""
        now = self.clock()
        self.state.apply_many(batch.events, now)
        if batch.malformed:
            self.state.note_malformed(batch.malformed)
        self._batches += 1

    def on_events_arrived(self, message: EventsArrived) -> None:
        self.ingest(message.batch)

    def on_feed_changed(self, message: FeedChanged) -> None:
        previous = self.feed_status
        self.feed_status = message.status
        if message.status.state == "failed":
            self.notify(message.status.detail, title="broker", severity="error", timeout=10)
        elif message.status.state == "connected" and previous.state == "disconnected":
            self.notify("reconnected to the broker", title="broker")
        self.refresh_views()

    @work(thread=True, group="feed", exit_on_error=False)
    def _run_feed(self) -> None:
        assert self.feed_factory is not None

        def on_batch(batch: FeedBatch) -> None:
            self.post_message(EventsArrived(batch))

        def on_status(status: FeedStatus) -> None:
            self.post_message(FeedChanged(status))

        feed = self.feed_factory(on_batch, on_status)
        self._feed = feed
        if self._stop.is_set():
            return
        try:
            feed.run()
        except AmqpToolError:
            pass  # already reported through the status callback
        except Exception as exc:  # the UI keeps running; the header says why
            self.post_message(FeedChanged(FeedStatus("failed", f"{type(exc).__name__}: {exc}")))

    # ------------------------------------------------------------------ queues

    def on_queues_updated(self, message: QueuesUpdated) -> None:
        self.query_one("#queues", GridTable).set_items(message.depths)
        self.query_one("#queues-note", Static).update(message.note or UNACKED_NOTE)

    @work(thread=True, group="queues", exit_on_error=False)
    def _poll_queues(self) -> None:
        assert self.queue_probe_factory is not None
        probe: QueueProbeLike | None = None
        next_discovery = 0.0
        try:
            while not self._stop.is_set():
                note = ""
                if not self.options.queues and time.monotonic() >= next_discovery:
                    found = self._discover_queues()
                    if found:
                        self.queue_names = found
                    next_discovery = time.monotonic() + (
                        self.options.discovery_interval if found else 5.0
                    )
                try:
                    if probe is None:
                        probe = self.queue_probe_factory()
                    depths = probe.probe(list(self.queue_names))
                except AmqpToolError as exc:
                    depths, note = [], f"queues: {exc.user_line()}"
                    if probe is not None:
                        probe.close()
                    probe = None
                self.post_message(QueuesUpdated(depths, note))
                self._stop.wait(self.options.queue_interval)
        finally:
            if probe is not None:
                probe.close()

    def _discover_queues(self) -> list[str]:
        if self.control is None:
            return []
        outcome = perform(self.control, active_queues_action())
        return queues_from_replies(outcome.replies)

    # ------------------------------------------------------------------ store

    def save_store(self) -> None:
        """Snapshot changed tasks (UI thread) and write them from a thread worker."""
        if self.store is None:
            return
        changed = self.state.drain_changed()
        records = [record_of(self.state.tasks[u]) for u in changed if u in self.state.tasks]
        if records:
            self._write_store(records)

    @work(thread=True, group="store", exit_on_error=False)
    def _write_store(self, records: list[Any]) -> None:
        assert self.store is not None
        try:
            self.store.save(records)
        except Exception as exc:  # a full disk must not take the screen down
            self.call_from_thread(
                self.notify, f"--state: cannot save: {exc}", severity="error", timeout=10
            )

    @work(thread=True, group="search", exclusive=True, exit_on_error=False)
    def _search_store(self, filt: TaskFilter) -> None:
        assert self.store is not None
        try:
            found = self.store.search(filt, limit=2000)
        except Exception as exc:
            self.call_from_thread(self.notify, f"--state: search failed: {exc}", severity="error")
            return
        self.post_message(StoreMatches(filt, found))

    def on_store_matches(self, message: StoreMatches) -> None:
        if message.filt == self.filter:
            self.stored_matches = message.tasks
            self.refresh_views()

    # ------------------------------------------------------------------ keys: views

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        keys = [(_key_label(b), b.description) for b in _bindings(self.BINDINGS)]
        self.push_screen(HelpScreen([*keys, *TABLE_KEYS]))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.apply_filter(event.value, search_store=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.apply_filter(event.value, search_store=True)
            self.tasks_table.focus()

    def apply_filter(self, text: str, *, search_store: bool = True) -> None:
        self.filter = TaskFilter.parse(text)
        self.stored_matches = []
        if search_store and self.store is not None and not self.filter.empty:
            self._search_store(self.filter)
        self.refresh_views()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.apply_filter("", search_store=False)
        self.tasks_table.focus()

    def action_sort_next(self) -> None:
        self.sort = self.sort.next_column()
        self.refresh_views()

    def action_sort_reverse(self) -> None:
        self.sort = self.sort.reversed()
        self.refresh_views()

    def on_grid_table_header_clicked(self, message: GridTable.HeaderClicked) -> None:
        if message.table.id == "tasks":
            self.sort = self.sort.by(message.column)
            self.refresh_views()

    def on_grid_table_row_activated(self, message: GridTable.RowActivated) -> None:
        if message.table.id == "tasks":
            self.open_detail(message.key)
        elif message.table.id == "workers":
            self.action_ping_worker()

    def action_detail(self) -> None:
        task = self.selected_task()
        if task is None:
            self.notify("no task selected", severity="warning")
            return
        self.open_detail(task.uuid)

    def open_detail(self, uuid: str) -> None:
        self.push_screen(TaskDetailScreen(uuid, self.task_detail_for))

    def action_focus_workers(self) -> None:
        self.workers_table.focus()

    def action_focus_tasks(self) -> None:
        self.tasks_table.focus()

    # ------------------------------------------------------------------ keys: actions

    def action_revoke_task(self) -> None:
        self._revoke(terminate=False)

    def action_terminate_task(self) -> None:
        self._revoke(terminate=True)

    def _revoke(self, *, terminate: bool) -> None:
        task = self.selected_task()
        if task is None:
            self.notify("no task selected", severity="warning")
            return
        self.confirm_then_run(revoke_action(task.uuid, terminate=terminate))

    def action_rate_limit(self) -> None:
        task = self.selected_task()
        if task is None or not task.name:
            self.notify("select a task with a known name first", severity="warning")
            return
        name = task.name

        def chosen(rate: str | None) -> None:
            if rate:
                self.send_action(rate_limit_action(name, rate))

        self.push_screen(RateLimitScreen(name), chosen)

    def action_ping_worker(self) -> None:
        node = self.selected_worker()
        if node is None:
            self.notify("no worker selected", severity="warning")
            return
        self.send_action(ping_action(node))

    def action_shutdown_worker(self) -> None:
        node = self.selected_worker()
        if node is None:
            self.notify("no worker selected", severity="warning")
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
            self.notify(f"{action.title}: no control connection", severity="error")
            return
        self.notify(f"{action.title}…", timeout=2)
        self._perform(action)

    @work(thread=True, group="actions", exit_on_error=False)
    def _perform(self, action: Action) -> None:
        assert self.control is not None
        self.post_message(ActionFinished(perform(self.control, action)))

    def on_action_finished(self, message: ActionFinished) -> None:
        outcome = message.outcome
        self.outcomes.append(outcome)
        severity = outcome.severity if outcome.severity in ("warning", "error") else "information"
        self.notify(outcome.message, severity=severity, timeout=8)  # type: ignore[arg-type]  # checked above


# ---------------------------------------------------------------------------- helpers

_OWN_ACTIONS = frozenset(
    b.action for b in MonitorApp.BINDINGS if isinstance(b, Binding) and b.action != "quit"
)
_DETAIL_ACTIONS = frozenset({"help", "revoke_task", "terminate_task", "rate_limit"})


def _bindings(items: list[BindingType]) -> list[Binding]:
    return [b for b in items if isinstance(b, Binding)]


def _key_label(binding: Binding) -> str:
    names = {"question_mark": "?", "slash": "/", "escape": "Esc"}
    return ", ".join(names.get(k, k) for k in binding.key.split(","))


def _task_key(task: Task) -> str:
    return task.uuid


def _task_grid_row(task: Task, tz: tzinfo | None, state: MonitorState) -> GridRow:
    row = task_row(task, tz)
    return GridRow(task.uuid, row.cells, dim=task.uuid not in state.tasks)


def _worker_key(row: WorkerRow) -> str:
    return row.hostname


def _worker_grid_row(row: WorkerRow) -> GridRow:
    return GridRow(row.hostname, row.cells, dim=not row.online)


def _queue_key(depth: QueueDepth) -> str:
    return depth.name


def _queue_grid_row(depth: QueueDepth) -> GridRow:
    return GridRow(depth.name, depth.cells, dim=depth.error is not None)
