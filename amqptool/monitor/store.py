"""``--state FILE``: an optional SQLite store of task history (stdlib ``sqlite3``).

The monitor saves the tasks that changed every couple of seconds (from a thread, never the UI
thread), loads the newest ones back on start, and searches the file when a filter is applied,
so a restart keeps what was seen and tasks evicted from memory can still be found (Flower's
users ask for this). The file is bounded too: beyond ``max_rows`` the oldest
rows are pruned.

Pure core: no pika, no textual. One connection guarded by a lock, usable from any thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from amqptool.errors import UsageError
from amqptool.monitor.core.model import Task
from amqptool.monitor.core.query import TaskFilter, search_text
from amqptool.private import ensure_private

__all__ = ["HistoryRow", "TaskRecord", "TaskStore", "record_of", "task_of"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY,
    name TEXT,
    state TEXT,
    worker TEXT,
    first_seen REAL NOT NULL,
    search TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_first_seen ON tasks (first_seen);
CREATE TABLE IF NOT EXISTS history (
    start INTEGER PRIMARY KEY,
    succeeded INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    depth INTEGER,
    p95 REAL
);
"""
#: One graph bucket: (start, succeeded, failed, queue depth, runtime p95).
HistoryRow = tuple[int, int, int, int | None, float | None]
# Every Task slot is stored except the in-memory ordering number and size.
_FIELDS = tuple(f for f in Task.__slots__ if f not in ("seq", "size"))

#: (uuid, name, state, worker, first_seen, search, data): one row, made on the owner thread.
TaskRecord = tuple[str, str | None, str | None, str | None, float, str, str]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def record_of(task: Task) -> TaskRecord:
    """A snapshot of ``task`` as a row (call it on the thread that owns the state)."""
    data = {f: _jsonable(getattr(task, f)) for f in _FIELDS}
    return (
        task.uuid,
        task.name,
        task.state,
        task.worker,
        float(task.first_seen),
        search_text(task),
        json.dumps(data, separators=(",", ":")),
    )


def task_of(data_json: str) -> Task | None:
    """The Task stored in a row's ``data`` column (None when it does not parse)."""
    try:
        data = json.loads(data_json)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uuid"), str):
        return None
    task = Task(data["uuid"])
    for name in _FIELDS:
        if name in data:
            value = data[name]
            if name == "timeline":
                value = [tuple(e) for e in value if isinstance(e, list) and len(e) == 4]
            setattr(task, name, value)
    return task


class TaskStore:
    """Task history in one SQLite file."""

    def __init__(self, path: str | Path, *, max_rows: int = 200_000) -> None:
        self.path = str(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        # task args and results: private to the owner (0600), a wider existing file tightened
        self.mode_note = ensure_private(self.path, "--state", companions=("-wal", "-shm"))
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise UsageError(
                    f"--state {self.path}: schema version {version} is not supported",
                    hint="use a new file",
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise UsageError(f"--state {self.path}: cannot open the SQLite file: {exc}") from None
        self._saved_since_prune = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, records: Iterable[TaskRecord]) -> int:
        """Insert or replace rows; prunes the oldest beyond ``max_rows`` now and then."""
        rows = list(records)
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO tasks "
                    "(uuid, name, state, worker, first_seen, search, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._saved_since_prune += len(rows)
                if self._saved_since_prune > max(1000, self.max_rows // 10):
                    self._prune()
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def save_history(self, rows: list[HistoryRow], keep_since: int) -> None:
        """Insert or replace graph buckets; drop those older than ``keep_since``."""
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("DELETE FROM history WHERE start < ?", (keep_since,))
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise

    def load_history(self, since: int) -> list[HistoryRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT start, succeeded, failed, depth, p95 FROM history WHERE start >= ?"
                " ORDER BY start",
                (since,),
            ).fetchall()
        return [
            (int(r[0]), int(r[1]), int(r[2]), r[3], r[4])
            for r in rows
            if all(isinstance(v, int | float | None) for v in r)
        ]

    def _prune(self) -> None:
        self._saved_since_prune = 0
        (count,) = self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()
        excess = count - self.max_rows
        if excess > 0:
            self._db.execute(
                "DELETE FROM tasks WHERE uuid IN "
                "(SELECT uuid FROM tasks ORDER BY first_seen LIMIT ?)",
                (excess,),
            )

    def count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()
        return int(count)

    def load_recent(self, limit: int) -> list[Task]:
        """The newest ``limit`` tasks, oldest first (ready for ``MonitorState.restore``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM tasks ORDER BY first_seen DESC LIMIT ?", (limit,)
            ).fetchall()
        tasks = [t for t in (task_of(r[0]) for r in reversed(rows)) if t is not None]
        return tasks

    def search(self, filt: TaskFilter, limit: int = 500) -> list[Task]:
        """Tasks in the file matching ``filt``, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if filt.states:
            where.append("state IN (" + ",".join("?" * len(filt.states)) + ")")
            params.extend(sorted(filt.states))
        if filt.name:
            where.append("lower(name) LIKE ? ESCAPE '\\'")
            params.append(_like(filt.name))
        if filt.worker:
            where.append("lower(worker) LIKE ? ESCAPE '\\'")
            params.append(_like(filt.worker))
        for word in filt.words:
            where.append("search LIKE ? ESCAPE '\\'")
            params.append(_like(word))
        sql = "SELECT data FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY first_seen DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [t for t in (task_of(r[0]) for r in rows) if t is not None]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
