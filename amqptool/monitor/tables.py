"""The monitor's three tables: their columns and how a selector's item becomes a row."""

from __future__ import annotations

from datetime import tzinfo

from amqptool.monitor.core.model import Task
from amqptool.monitor.core.selectors import WorkerRow, task_row
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.core.totals import TypeRow
from amqptool.monitor.queues import QueueDepth
from amqptool.monitor.widgets import Column, GridRow, GridTable

__all__ = [
    "QUEUE_GRID_COLUMNS",
    "TABLE_KEYS",
    "TASK_GRID_COLUMNS",
    "TYPE_GRID_COLUMNS",
    "WORKER_GRID_COLUMNS",
    "queues_table",
    "tasks_table",
    "types_table",
    "workers_table",
]

TASK_GRID_COLUMNS = (
    Column("uuid", "UUID", width=36, compact=13),
    Column("name", "Name", min_width=12, weight=3),
    Column("state", "State", width=9),
    Column("worker", "Worker", min_width=10, weight=2),
    Column("received", "Received", width=8),
    Column("started", "Started", width=8),
    Column("runtime", "Runtime", width=8),
    Column("retries", "Retries", width=7, optional=2),
    Column("eta", "ETA", width=14, optional=3),
    Column("result", "Result", min_width=10, weight=2, optional=1),
    Column("args", "Args", min_width=8, weight=2),
)
WORKER_GRID_COLUMNS = (
    Column("hostname", "Worker", min_width=18, weight=1),
    Column("status", "Status", width=7),
    Column("active", "Active", width=6),
    Column("processed", "Processed", width=9, optional=4),
    Column("succeeded", "OK", width=6, optional=1),
    Column("failed", "Failed", width=6, optional=1),
    Column("loadavg", "Load avg", width=14, compact=5, optional=2),
    Column("heartbeat", "Heartbeat", width=9),
    Column("version", "Software", min_width=16, weight=1, optional=3),
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
    ("Enter", "task detail (tasks table), worker detail (workers table)"),
    ("+ - a c l t r", "worker screen: pool grow/shrink, add/cancel consumer, limits, refresh"),
    ("Tab / Shift+Tab", "next / previous table"),
    ("click a header", "sort by that column (again: reverse)"),
)


def tasks_table(tz: tzinfo | None, state: MonitorState) -> GridTable:
    """Tasks; rows only found in the ``--state`` file are dimmed."""

    def row(task: Task) -> GridRow:
        return GridRow(task.uuid, task_row(task, tz).cells, dim=task.uuid not in state.tasks)

    return GridTable(
        TASK_GRID_COLUMNS,
        row,
        _task_key,
        style_column="state",
        empty_text="no tasks seen yet",
        id="tasks",
    )


def workers_table() -> GridTable:
    """Workers; offline ones are dimmed."""
    return GridTable(
        WORKER_GRID_COLUMNS,
        _worker_grid_row,
        _worker_key,
        style_column="status",
        empty_text="no workers seen yet (waiting for heartbeats)",
        id="workers",
    )


TYPE_GRID_COLUMNS = (
    Column("name", "Task type", min_width=16, weight=1),
    Column("received", "Received", width=9),
    Column("succeeded", "Succeeded", width=9),
    Column("failed", "Failed", width=7),
    Column("retried", "Retried", width=7),
    Column("revoked", "Revoked", width=7),
    Column("p50", "p50", width=8),
    Column("p95", "p95", width=8),
    Column("p99", "p99", width=8),
)


def types_table() -> GridTable:
    """Totals since start per task type, with runtime percentiles."""
    return GridTable(
        TYPE_GRID_COLUMNS,
        _type_grid_row,
        _type_key,
        empty_text="no task events yet",
        id="types",
    )


def _type_key(row: TypeRow) -> str:
    return row.name


def _type_grid_row(row: TypeRow) -> GridRow:
    return GridRow(row.name, row.cells)


def queues_table() -> GridTable:
    return GridTable(
        QUEUE_GRID_COLUMNS,
        _queue_grid_row,
        _queue_key,
        empty_text="no queues known yet",
        id="queues",
    )


def _task_key(task: Task) -> str:
    return task.uuid


def _worker_key(row: WorkerRow) -> str:
    return row.hostname


def _worker_grid_row(row: WorkerRow) -> GridRow:
    return GridRow(row.hostname, row.cells, dim=not row.online)


def _queue_key(depth: QueueDepth) -> str:
    return depth.name


def _queue_grid_row(depth: QueueDepth) -> GridRow:
    return GridRow(depth.name, depth.cells, dim=depth.error is not None)
