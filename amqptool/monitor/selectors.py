"""Pure view selectors: what each widget shows, computed from :class:`MonitorState`.

Widgets draw from these values and never touch the state (STYLE.md rule 8). Every function
takes the time it needs as an argument (``now``) and the time zone used for wall-clock columns
(``tz``), so views are reproducible in tests and snapshots.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from amqptool.monitor.state import STATES, MonitorState, Task, Worker

__all__ = [
    "TASK_COLUMNS",
    "WORKER_COLUMNS",
    "HeaderView",
    "SortSpec",
    "TaskDetail",
    "TaskFilter",
    "TaskRow",
    "WorkerRow",
    "fmt_age",
    "fmt_clock",
    "fmt_duration",
    "header_view",
    "select_tasks",
    "shorten",
    "sparkline_series",
    "task_detail",
    "task_row",
    "task_rows",
    "worker_rows",
]

#: (key, title) of the task table's columns, in display order.
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("uuid", "UUID"),
    ("name", "Name"),
    ("state", "State"),
    ("worker", "Worker"),
    ("received", "Received"),
    ("started", "Started"),
    ("runtime", "Runtime"),
    ("args", "Args"),
)
WORKER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hostname", "Worker"),
    ("status", "Status"),
    ("active", "Active"),
    ("processed", "Processed"),
    ("loadavg", "Load avg"),
    ("heartbeat", "Heartbeat"),
    ("version", "Software"),
)
_STATE_ORDER = {s: i for i, s in enumerate(STATES)}


# --------------------------------------------------------------------------- formatting


def fmt_clock(ts: float | None, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS`` of an epoch time in ``tz`` (local time when None); ``-`` when unknown."""
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_datetime(ts: float | None, tz: tzinfo | None = None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_duration(seconds: float | None) -> str:
    """A short duration: ``850ms``, ``2.31s``, ``4m05s``, ``3h12m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60.0:
        return f"{seconds:.2f}s"
    if seconds < 3600.0:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m{secs:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def fmt_age(seconds: float | None) -> str:
    """How long ago: ``0.4s ago``, ``12s ago``, ``3m ago``; ``never`` when unknown."""
    if seconds is None:
        return "never"
    if seconds < 10:
        return f"{seconds:.1f}s ago"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def shorten(text: Any, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else repr(text)
    value = " ".join(value.split())
    if len(value) <= width:
        return value
    return value[: max(0, width - 1)] + "…"


# --------------------------------------------------------------------------- filter and sort


@dataclass(frozen=True)
class TaskFilter:
    """``state:failure,retry name:add worker:w1 free words`` (all parts must match).

    ``state:`` takes exact state names (any of a comma list); ``name:`` and ``worker:`` are
    case-insensitive substrings; other words must each appear in the uuid, name, worker,
    args, kwargs, result or exception.
    """

    states: frozenset[str] = frozenset()
    name: str | None = None
    worker: str | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TaskFilter:
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        states: set[str] = set()
        name: str | None = None
        worker: str | None = None
        words: list[str] = []
        for part in parts:
            key, sep, value = part.partition(":")
            key = key.lower()
            if sep and value and key == "state":
                states.update(s.strip().upper() for s in value.split(",") if s.strip())
            elif sep and value and key in ("name", "task"):
                name = value.lower()
            elif sep and value and key in ("worker", "host", "hostname"):
                worker = value.lower()
            else:
                words.append(part.lower())
        return cls(frozenset(states), name, worker, tuple(words))

    @property
    def empty(self) -> bool:
        return not (self.states or self.name or self.worker or self.words)

    def describe(self) -> str:
        parts: list[str] = []
        if self.states:
            parts.append("state:" + ",".join(sorted(self.states)))
        if self.name:
            parts.append(f"name:{self.name}")
        if self.worker:
            parts.append(f"worker:{self.worker}")
        parts.extend(self.words)
        return " ".join(parts)

    def matches(self, task: Task) -> bool:
        if self.states and task.state not in self.states:
            return False
        if self.name and self.name not in (task.name or "").lower():
            return False
        if self.worker and self.worker not in (task.worker or "").lower():
            return False
        if self.words:
            haystack = search_text(task)
            return all(word in haystack for word in self.words)
        return True


def search_text(task: Task) -> str:
    """The lower-cased text free-text filters search (also stored by the SQLite store)."""
    parts = (
        task.uuid,
        task.name,
        task.worker,
        task.args,
        task.kwargs,
        task.result,
        task.exception,
    )
    return "\n".join(p if isinstance(p, str) else repr(p) for p in parts if p is not None).lower()


@dataclass(frozen=True)
class SortSpec:
    """Sort by a task column; ``column=None`` means arrival order. Newest/largest first."""

    column: str | None = None
    descending: bool = True

    def next_column(self) -> SortSpec:
        keys: list[str | None] = [None, *(key for key, _ in TASK_COLUMNS)]
        index = keys.index(self.column) if self.column in keys else 0
        column = keys[(index + 1) % len(keys)]
        return SortSpec(column, self.descending)

    def reversed(self) -> SortSpec:
        return SortSpec(self.column, not self.descending)

    def by(self, column: str) -> SortSpec:
        """Sort by ``column``; choosing the current column again flips the order."""
        if column == self.column:
            return self.reversed()
        return SortSpec(column, True)

    def describe(self) -> str:
        arrow = "↓" if self.descending else "↑"
        title = dict(TASK_COLUMNS).get(self.column or "", "arrival")
        return f"{title} {arrow}"


def _sort_key(column: str | None) -> Any:
    if column is None:
        return lambda t: (t.first_seen, t.seq)
    if column in ("received", "started", "runtime"):

        def number_key(t: Task) -> tuple[bool, float, int]:
            value = getattr(t, column)
            return (value is not None, value or 0.0, t.seq)

        return number_key
    if column == "state":
        return lambda t: (_STATE_ORDER.get(t.state or "", len(STATES)), t.state or "", t.seq)
    return lambda t: (str(getattr(t, column) or ""), t.seq)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskRow:
    uuid: str
    state: str
    cells: tuple[str, ...]
    stored: bool = False  # only in the SQLite store, not in memory


def task_row(task: Task, tz: tzinfo | None = None, *, stored: bool = False) -> TaskRow:
    runtime = task.runtime
    return TaskRow(
        uuid=task.uuid,
        state=task.state or "",
        cells=(
            task.uuid,
            task.name or "?",
            task.state or "",
            task.worker or "",
            fmt_clock(task.received or task.sent, tz),
            fmt_clock(task.started, tz),
            fmt_duration(runtime) if isinstance(runtime, int | float) else "-",
            shorten(task.args, 40),
        ),
        stored=stored,
    )


def select_tasks(
    state: MonitorState,
    filt: TaskFilter | None = None,
    sort: SortSpec | None = None,
    *,
    extra: Iterable[Task] = (),
) -> list[Task]:
    """The tasks the table shows, filtered and in display order (all of them, unformatted).

    ``extra`` are tasks found in the SQLite store; memory wins when a uuid is in both.
    """
    filt = filt or TaskFilter()
    sort = sort or SortSpec()
    memory = state.tasks
    stored = [t for t in extra if t.uuid not in memory]
    if sort.column is None and sort.descending and not stored:
        # Arrival order is the dict's order: walk it backwards, no sort needed.
        if filt.empty:
            return list(reversed(memory.values()))
        return [t for t in reversed(memory.values()) if filt.matches(t)]
    pool = list(memory.values())
    pool.extend(stored)
    matched = pool if filt.empty else [t for t in pool if filt.matches(t)]
    matched.sort(key=_sort_key(sort.column), reverse=sort.descending)
    return matched


def task_rows(
    state: MonitorState,
    filt: TaskFilter | None = None,
    sort: SortSpec | None = None,
    *,
    limit: int = 500,
    tz: tzinfo | None = None,
    extra: Iterable[Task] = (),
) -> tuple[list[TaskRow], int]:
    """The first ``limit`` formatted rows and how many tasks match in total."""
    extra = list(extra)
    tasks = select_tasks(state, filt, sort, extra=extra)
    stored_ids = {t.uuid for t in extra if t.uuid not in state.tasks}
    rows = [task_row(t, tz, stored=t.uuid in stored_ids) for t in tasks[:limit]]
    return rows, len(tasks)


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerRow:
    hostname: str
    online: bool
    cells: tuple[str, ...]


def worker_rows(state: MonitorState, now: float) -> list[WorkerRow]:
    """One row per known worker, online ones first, then by name."""
    rows: list[tuple[bool, str, WorkerRow]] = []
    for worker in state.workers.values():
        online = worker.is_online(now)
        rows.append((not online, worker.hostname, _worker_row(worker, online, now)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def _worker_row(worker: Worker, online: bool, now: float) -> WorkerRow:
    load = " ".join(f"{x:.2f}" for x in worker.loadavg) if worker.loadavg else "-"
    software = " ".join(p for p in (worker.sw_ident, worker.sw_ver) if p) or "-"
    return WorkerRow(
        hostname=worker.hostname,
        online=online,
        cells=(
            worker.hostname,
            "online" if online else "offline",
            "-" if worker.active is None else str(worker.active),
            "-" if worker.processed is None else str(worker.processed),
            load,
            fmt_age(worker.heartbeat_age(now)),
            software,
        ),
    )


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class HeaderView:
    broker: str
    connection: str
    connected: bool
    workers_online: int
    workers_offline: int
    counts: tuple[tuple[str, int], ...]
    ok_rate: float
    fail_rate: float
    ok_series: tuple[int, ...]
    fail_series: tuple[int, ...]
    events: int
    malformed: int
    tasks_in_memory: int
    max_tasks: int

    def summary_line(self) -> str:
        counts = "  ".join(f"{state} {n}" for state, n in self.counts) or "no tasks yet"
        return f"workers {self.workers_online} online / {self.workers_offline} offline   {counts}"

    def rate_line(self) -> str:
        return (
            f"succeeded {self.ok_rate:.1f}/s   failed {self.fail_rate:.1f}/s   "
            f"events {self.events}   tasks {self.tasks_in_memory}/{self.max_tasks}"
            + (f"   malformed {self.malformed}" if self.malformed else "")
        )


def sparkline_series(state: MonitorState, now: float, seconds: int = 120) -> tuple[list[int], ...]:
    return state.throughput.series(now, seconds)


def header_view(
    state: MonitorState,
    now: float,
    *,
    broker: str,
    connection: str,
    connected: bool,
    spark_seconds: int = 120,
) -> HeaderView:
    online, offline = state.workers_online(now)
    counts = [(s, state.counts.get(s, 0)) for s in STATES if state.counts.get(s, 0)]
    counts.extend(
        (s, n) for s, n in sorted(state.counts.items()) if s not in _STATE_ORDER and n > 0
    )
    ok_rate, fail_rate = state.throughput.rate(now)
    ok_series, fail_series = state.throughput.series(now - 1.0, spark_seconds)
    return HeaderView(
        broker=broker,
        connection=connection,
        connected=connected,
        workers_online=online,
        workers_offline=offline,
        counts=tuple(counts),
        ok_rate=ok_rate,
        fail_rate=fail_rate,
        ok_series=tuple(ok_series),
        fail_series=tuple(fail_series),
        events=state.event_count,
        malformed=state.malformed,
        tasks_in_memory=len(state.tasks),
        max_tasks=state.max_tasks,
    )


# --------------------------------------------------------------------------- task detail


@dataclass(frozen=True)
class TimelineEntry:
    time: str
    offset: str
    event: str
    host: str


@dataclass(frozen=True)
class TaskDetail:
    uuid: str
    name: str
    state: str
    fields: tuple[tuple[str, str], ...]
    timeline: tuple[TimelineEntry, ...]
    traceback: str | None
    queue_wait: float | None
    queue_wait_from: str | None
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def queue_wait(task: Task) -> tuple[float | None, str | None]:
    """Seconds between publish (``task-sent``) or receipt by a worker and the start."""
    if task.started is None:
        return None, None
    if task.sent is not None and task.sent <= task.started:
        return task.started - task.sent, "sent"
    if task.received is not None and task.received <= task.started:
        return task.started - task.received, "received"
    return None, None


def task_detail(task: Task, now: float, tz: tzinfo | None = None) -> TaskDetail:
    wait, wait_from = queue_wait(task)
    outcome: list[tuple[str, str]] = []
    if task.result is not None:
        outcome.append(("result", _text(task.result)))
    if task.exception is not None:
        outcome.append(("exception", _text(task.exception)))
    if task.state == "REVOKED":
        flags = [n for n in ("terminated", "expired") if getattr(task, n)]
        outcome.append(("revoked", ", ".join(flags) or "yes"))
        if task.signum is not None:
            outcome.append(("signal", str(task.signum)))
    if task.requeue is not None:
        outcome.append(("requeue", str(bool(task.requeue))))
    fields: list[tuple[str, str]] = [
        ("uuid", task.uuid),
        ("name", task.name or "?"),
        ("state", task.state or "?"),
        ("worker", task.worker or "-"),
        ("args", _text(task.args)),
        ("kwargs", _text(task.kwargs)),
        *outcome,
        ("retries", "-" if task.retries is None else str(task.retries)),
        ("eta", _text(task.eta) or "-"),
        ("expires", _text(task.expires) or "-"),
        ("received", fmt_datetime(task.received, tz)),
        ("started", fmt_datetime(task.started, tz)),
        ("runtime", fmt_duration(task.runtime)),
        (
            "time in queue",
            "-" if wait is None else f"{fmt_duration(wait)} (since {wait_from})",
        ),
        ("root_id", task.root_id or "-"),
        ("parent_id", task.parent_id or "-"),
    ]
    if task.client:
        fields.append(("sent by", task.client))
    if task.queue or task.routing_key:
        fields.append(("queue", f"{task.queue or '-'} (routing key {task.routing_key or '-'})"))
    first = task.timeline[0][1] if task.timeline else None
    timeline = tuple(
        TimelineEntry(
            time=fmt_datetime(ts, tz),
            offset="" if first is None else "+" + fmt_duration(ts - first),
            event=etype,
            host=host,
        )
        for etype, ts, host, _clock in task.timeline
    )
    extra = tuple(sorted((k, _text(v)) for k, v in (task.extra or {}).items()))
    return TaskDetail(
        uuid=task.uuid,
        name=task.name or "?",
        state=task.state or "?",
        fields=tuple(fields),
        timeline=timeline,
        traceback=task.traceback if isinstance(task.traceback, str) else None,
        queue_wait=wait,
        queue_wait_from=wait_from,
        extra=extra,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)


def counts_text(counts: Sequence[tuple[str, int]]) -> str:
    return "  ".join(f"{s} {n}" for s, n in counts)
