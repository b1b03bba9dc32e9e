"""Pure view selectors: what each widget shows, computed from :class:`MonitorState`.

Widgets draw from these values and never touch the state (docs/architecture.md, Threads). Every
function takes the time it needs as an argument (``now``) and the time zone used for wall-clock
columns (``tz``), so views are reproducible in tests and snapshots. The filter language and sort
order live in :mod:`amqptool.monitor.core.query`, cell formatting in
:mod:`amqptool.monitor.core.formatting`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from amqptool.monitor.core.formatting import fmt_age, fmt_clock, fmt_datetime, fmt_duration, shorten
from amqptool.monitor.core.model import STATES, Task, Worker
from amqptool.monitor.core.query import TASK_COLUMNS, SortSpec, TaskFilter, search_text, sort_key
from amqptool.monitor.core.state import MonitorState

__all__ = [
    "TASK_COLUMNS",
    "HeaderView",
    "SortSpec",
    "TaskDetail",
    "TaskFilter",
    "TaskRow",
    "TimelineEntry",
    "WorkerRow",
    "fmt_age",
    "fmt_clock",
    "fmt_datetime",
    "fmt_duration",
    "header_view",
    "queue_wait",
    "search_text",
    "select_tasks",
    "shorten",
    "task_detail",
    "task_row",
    "task_rows",
    "worker_rows",
]

_STATE_ORDER = {s: i for i, s in enumerate(STATES)}
# States whose header count is a total since start (the event kind counted), not a census.
_FINISHED_KIND = {
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "RETRY": "retried",
    "REVOKED": "revoked",
    "REJECTED": "rejected",
}


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
            "-" if task.retries is None else str(task.retries),
            _eta(task.eta),
            shorten(task.exception if task.exception is not None else task.result, 60),
            shorten(task.args, 40),
        ),
        stored=stored,
    )


def _eta(eta: str | None) -> str:
    """An ISO ETA as ``MM-DD HH:MM:SS`` (the date and time parts), ``-`` when none."""
    if not eta:
        return "-"
    return shorten(eta.replace("T", " ")[5:19], 14)


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
    matched.sort(key=sort_key(sort.column), reverse=sort.descending)
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
    by_host = state.totals.by(2)
    for worker in state.workers.values():
        online = worker.is_online(now)
        totals = by_host.get(worker.hostname, {})
        rows.append((not online, worker.hostname, _worker_row(worker, online, now, totals)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def _worker_row(worker: Worker, online: bool, now: float, totals: dict[str, int]) -> WorkerRow:
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
            str(totals.get("succeeded", 0)),
            str(totals.get("failed", 0)),
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
    counts: list[tuple[str, int]] = []
    for s in STATES:  # finished states: totals since start; others: tasks now in that state
        kind = _FINISHED_KIND.get(s)
        n = state.totals.total(kind) if kind else state.counts.get(s, 0)
        if n:
            counts.append((s, n))
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
    parent: tuple[str, str, str] | None = None  # (uuid, name, state) when in memory
    children: tuple[tuple[str, str, str], ...] = ()  # tasks in memory whose parent this is


def queue_wait(task: Task) -> tuple[float | None, str | None]:
    """Seconds between publish (``task-sent``) or receipt by a worker and the start."""
    if task.started is None:
        return None, None
    if task.sent is not None and task.sent <= task.started:
        return task.started - task.sent, "sent"
    if task.received is not None and task.received <= task.started:
        return task.started - task.received, "received"
    return None, None


def _relative(task: Task) -> tuple[str, str, str]:
    return (task.uuid, task.name or "?", task.state or "?")


def task_detail(
    task: Task,
    now: float,
    tz: tzinfo | None = None,
    tasks: Mapping[str, Task] | None = None,
    max_children: int = 50,
) -> TaskDetail:
    """The detail of ``task``; with ``tasks`` (the state's), its parent and children too."""
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
    parent = children = None
    if tasks is not None:
        found = tasks.get(task.parent_id) if task.parent_id else None
        parent = _relative(found) if found is not None else None
        kids = [t for t in tasks.values() if t.parent_id == task.uuid][:max_children]
        children = tuple(_relative(t) for t in kids)
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
        parent=parent,
        children=children or (),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)
