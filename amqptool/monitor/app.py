"""The Textual front end of ``amqptool monitor``: a thin adapter over state + selectors.

Threads (docs/architecture.md, Threads): the event feed, the queue poller, control actions and the
SQLite store run in thread workers and *post past-tense messages*; the UI thread owns the
:class:`MonitorState`, folds each batch in one call, and redraws at a capped rate
(``refresh_hz``) only what changed. Nothing here reads the clock directly: ``clock`` is given
(tests freeze it).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from platformdirs import user_downloads_path
from rich.text import Text
from textual import events
from textual.app import ComposeResult, ScreenStackError
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from amqptool.monitor.actions import ControlPort, Outcome
from amqptool.monitor.app_actions import ActionKeys
from amqptool.monitor.background import (
    BackgroundWork,
    FeedFactory,
    FeedLike,
    MonitorOptions,
    QueueProbeLike,
)
from amqptool.monitor.bars import KeyBar, TextLine
from amqptool.monitor.core.selectors import (
    SortSpec,
    TaskDetail,
    TaskFilter,
    WorkerRow,
    header_view,
    select_tasks,
    task_detail,
    worker_rows,
)
from amqptool.monitor.core.state import MonitorState, Task
from amqptool.monitor.feed import FeedStatus
from amqptool.monitor.queues import UNACKED_NOTE, QueueDepth
from amqptool.monitor.screens import GraphsScreen, HelpScreen, TaskDetailScreen, TaskTypesScreen
from amqptool.monitor.store import TaskStore
from amqptool.monitor.tables import TABLE_KEYS, queues_table, tasks_table, workers_table
from amqptool.monitor.widgets import GridTable, MonitorHeader
from amqptool.monitor.workerscreen import WorkerDetailScreen

__all__ = ["FeedLike", "MonitorApp", "MonitorOptions", "QueueProbeLike"]


class MonitorApp(BackgroundWork, ActionKeys):
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
        Binding("T", "task_types", "Task types"),
        Binding("h", "graphs", "History graphs"),
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
        self.queue_depths: list[QueueDepth] = []
        self.outcomes: list[Outcome] = []  # every action's outcome, for tests and the log
        self._feed: FeedLike | None = None
        self._stop = threading.Event()
        self._shown_version = -1
        self._shown_query: tuple[TaskFilter, SortSpec, int] | None = None
        self._batches = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._drawn: tuple[object, ...] = ()
        self._drawn_at = 0.0
        self._last_select: tuple[int, TaskFilter, SortSpec, list[Task], bool] | None = None
        self._more_posted = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield MonitorHeader(id="header")
        with Horizontal(id="top"):
            yield workers_table()
            with Vertical(id="queues-box"):
                yield queues_table()
                yield Static(UNACKED_NOTE, id="queues-note")
        yield Input(
            placeholder="filter: state:FAILURE name:add worker:w1 words",
            id="filter",
            select_on_focus=False,  # text typed or pasted before the focus lands must stay
        )
        yield tasks_table(self.options.tz, self.state)
        yield TextLine("", id="status")
        yield KeyBar()

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
        self.call_after_refresh(self._prepare_help)

    def _help_screen(self) -> HelpScreen:
        keys = [(_key_label(b), b.description) for b in _bindings(self.BINDINGS)]
        return HelpScreen([*keys, *TABLE_KEYS])

    def _prepare_help(self) -> None:
        """Build the help screen right after the first paint, not on the first ``?``: composing
        it, and adding its CSS to the app's stylesheet, made that key the slowest of all
        (110-130 ms on a quiet machine, 200 ms beside busy loops, against 15-50 ms). Textual
        composes a screen when it first starts it; ``_get_screen`` starts an installed one
        without showing it (as a popped installed screen is kept). Where that private method
        is missing, the first ``?`` builds it as before."""
        if self.is_screen_installed("help"):
            return
        self.install_screen(self._help_screen(), "help")
        start = getattr(self, "_get_screen", None)
        if callable(start):
            start("help")

    def on_unmount(self) -> None:
        self._stop.set()
        feed = self._feed
        if feed is not None:
            feed.stop()

    async def on_event(self, event: events.Event) -> None:
        """``/`` opens the filter *before* the keys behind it are dispatched: keys typed or
        pasted fast after ``/`` (``/quick``) land in the filter, never on the shortcuts."""
        if (
            isinstance(event, events.Key)
            and not event.is_forwarded
            and event.character == "/"
            and self._filter_key_opens()
        ):
            self.action_filter()
            return
        await super().on_event(event)

    def _filter_key_opens(self) -> bool:
        if isinstance(self.screen, ModalScreen) or self.screen is not self.screen_stack[0]:
            return False
        return not isinstance(self.focused, Input)

    def on_paste(self, event: events.Paste) -> None:
        """A paste on the main screen is a filter (a leading ``/`` is the filter key)."""
        if isinstance(self.focused, Input) or self.screen is not self.screen_stack[0]:
            return
        event.stop()
        self.action_filter()
        box = self.query_one("#filter", Input)
        box.insert_text_at_cursor(" ".join(event.text.removeprefix("/").split()))

    async def action_quit(self) -> None:
        """Quit; the exit code says why the feed failed (71 when the login was refused)."""
        status = self.feed_status
        self.exit(return_code=status.exit_code if status.state == "failed" else 0)

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """The palette's Screenshot: into ~/Downloads when it exists, else the current folder."""
        if path is None:
            downloads = user_downloads_path()
            path = str(downloads) if downloads.is_dir() else os.getcwd()
        key = super().deliver_screenshot(filename, path, time_format)
        self.notify(f"screenshot saved in {path}", markup=False)
        return key

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Main-screen keys only work on the main screen; the detail screen keeps a few."""
        if action not in _OWN_ACTIONS:
            return True
        screen = self.screen
        if isinstance(screen, TaskDetailScreen):
            return action in _DETAIL_ACTIONS
        return screen is self.screen_stack[0]

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
        # a timer or message arriving while the screens are torn down at exit: no widget
        # (NoMatches), or no screen left at all (ScreenStackError)
        with contextlib.suppress(NoMatches, ScreenStackError):
            self._refresh_views(self.clock() if now is None else now, force)

    def _refresh_views(self, now: float, force: bool) -> None:
        # Header and workers: when something came in, else once a second (heartbeat ages).
        seen = (self.state.event_count, self.state.malformed, self.feed_status, self.screen)
        if force or seen != self._drawn or time.monotonic() - self._drawn_at >= 1.0:
            self._drawn, self._drawn_at = seen, time.monotonic()
            self._refresh_header(now)
        self._refresh_tasks(force)

    def _refresh_header(self, now: float) -> None:
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

    def _refresh_tasks(self, force: bool) -> None:
        query = (self.filter, self.sort, len(self.stored_matches))
        if force or self.state.version != self._shown_version or query != self._shown_query:
            self._shown_version = self.state.version
            self._shown_query = query
            tasks = self._select()
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
            self.query_one("#status", TextLine).show(
                Text(f"{shown}   sort: {self.sort.describe()}{evicted}   ? help")
            )

    def _select(self) -> list[Task]:
        """The task list; a filter narrowing the last one on unchanged tasks only re-checks
        the last matches (a keystroke in the filter box does not scan every task)."""
        last = self._last_select
        if (
            last is not None
            and not self.stored_matches
            and last[0] == self.state.version
            and not last[4]
            and last[2] == self.sort
            and self.filter.narrows(last[1])
        ):
            tasks = [t for t in last[3] if self.filter.matches(t)]
        else:
            tasks = select_tasks(self.state, self.filter, self.sort, extra=self.stored_matches)
        self._last_select = (
            self.state.version,
            self.filter,
            self.sort,
            tasks,
            bool(self.stored_matches),
        )
        return tasks

    def task_detail_for(self, uuid: str) -> TaskDetail | None:
        task = self.state.tasks.get(uuid) or next(
            (t for t in self.stored_matches if t.uuid == uuid), None
        )
        if task is None:
            return None
        return task_detail(task, self.clock(), self.options.tz, self.state.tasks)

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

    # ------------------------------------------------------------------ keys: views

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        # Built once (ahead, see _prepare_help) and kept installed: a press only shows it.
        if not self.is_screen_installed("help"):
            self.install_screen(self._help_screen(), "help")
        self.push_screen("help")

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        self.screen.set_focus(box)  # now, not later: the next key goes to the box

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
            self.push_screen(WorkerDetailScreen(message.key, self))

    def action_detail(self) -> None:
        task = self.selected_task()
        if task is None:
            self.notify("no task selected", severity="warning", markup=False)
            return
        self.open_detail(task.uuid)

    def open_detail(self, uuid: str) -> None:
        self.push_screen(TaskDetailScreen(uuid, self.task_detail_for))

    def action_task_types(self) -> None:
        totals = self.state.totals

        def title() -> str:
            done = totals.total("succeeded") + totals.total("failed")
            return f"task types: totals since start ({done} finished), runtime of succeeded tasks"

        self.push_screen(TaskTypesScreen(totals.type_rows, title))

    def action_graphs(self) -> None:
        history = self.state.history
        self.push_screen(GraphsScreen(lambda minutes: history.series(self.clock(), minutes)))

    def action_focus_workers(self) -> None:
        self.workers_table.focus()

    def action_focus_tasks(self) -> None:
        self.tasks_table.focus()


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
