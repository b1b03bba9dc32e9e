"""The SQL result backend (``db+postgresql://``, ``db+mysql://``, ``db+sqlite:///``).

Celery's tables (``docs/results.md``): ``celery_taskmeta`` and ``celery_tasksetmeta`` with ids
from the sequences ``task_id_sequence`` / ``taskset_id_sequence`` (where the database has
sequences), created when missing. ``result`` and ``children`` hold the result serializer's bytes;
``date_done`` is naive UTC. SQL has no chord counter: chords are joined by ``celery.chord_unlock``.

SQLAlchemy is imported on first use (``pip install amqptool[sql]``); ``db+mysql://`` uses PyMySQL
when MySQLdb is not installed.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from amqptool.backends.base import Backend
from amqptool.codec.times import format_iso, parse_iso
from amqptool.errors import ConnectionFailedError, UsageError

__all__ = ["SqlBackend", "engine_url"]


def engine_url(url: str) -> str:
    """The SQLAlchemy URL behind a ``db+`` URL (MySQL through PyMySQL if MySQLdb is missing)."""
    if not url.startswith("db+"):
        raise UsageError(f"not an SQL result backend URL (db+...): {url!r}")
    rest = url[3:]
    if rest.startswith("mysql://") and importlib.util.find_spec("MySQLdb") is None:
        rest = "mysql+pymysql://" + rest[len("mysql://") :]
    return rest


def _sa() -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise UsageError(
            "the SQL result backend needs SQLAlchemy and a driver",
            hint="pip install 'amqptool[sql]'",
        ) from None
    return sqlalchemy


def _tables(sa: Any) -> tuple[Any, Any, Any]:
    md = sa.MetaData()
    task = sa.Table(
        "celery_taskmeta",
        md,
        sa.Column("id", sa.Integer, sa.Sequence("task_id_sequence"), primary_key=True),
        sa.Column("task_id", sa.String(155), unique=True),
        sa.Column("status", sa.String(50)),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("date_done", sa.DateTime, nullable=True, index=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("children", sa.LargeBinary, nullable=True),
        sa.Column("name", sa.String(155), nullable=True),
        sa.Column("args", sa.LargeBinary, nullable=True),
        sa.Column("kwargs", sa.LargeBinary, nullable=True),
        sa.Column("worker", sa.String(155), nullable=True),
        sa.Column("retries", sa.Integer, nullable=True),
        sa.Column("queue", sa.String(155), nullable=True),
        sa.Column("stamps", sa.LargeBinary, nullable=True),
        sqlite_autoincrement=True,
    )
    taskset = sa.Table(
        "celery_tasksetmeta",
        md,
        sa.Column("id", sa.Integer, sa.Sequence("taskset_id_sequence"), primary_key=True),
        sa.Column("taskset_id", sa.String(155), unique=True),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("date_done", sa.DateTime, nullable=True, index=True),
        sqlite_autoincrement=True,
    )
    return md, task, taskset


def _naive_utc(iso: str | None) -> datetime:
    when = parse_iso(iso) if iso else datetime.now(UTC)
    return when.astimezone(UTC).replace(tzinfo=None)


class SqlBackend(Backend):
    scheme = "db"
    native_chords = False

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._sa_url = engine_url(url)
        sa = _sa()
        try:
            sa.engine.make_url(self._sa_url)
        except Exception as exc:  # SQLAlchemy's ArgumentError and friends
            raise UsageError(f"bad SQL result backend URL: {exc}") from None
        self._md, self.task_table, self.group_table = _tables(sa)
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                sa = _sa()
                try:
                    engine = sa.create_engine(self._sa_url, pool_pre_ping=True)
                except Exception as exc:  # missing driver, bad option
                    raise UsageError(f"SQL result backend: {exc}") from None
                try:
                    self._run(lambda: _create_tables(sa, self._md, engine), "create tables")
                except sa.exc.DBAPIError as exc:  # refused rather than unreachable
                    raise ConnectionFailedError(
                        f"result backend {self.redacted_url()}: create tables: "
                        + " ".join(str(exc.orig or exc).split()),
                        hint="may this database user create tables? or create them beforehand",
                    ) from exc
                self._engine = engine
            return self._engine

    def _run(self, op: Any, what: str) -> Any:
        sa = _sa()
        try:
            return op()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise ConnectionFailedError(
                f"result backend {self.redacted_url()}: {what}: "
                + " ".join(str(exc.orig or exc).split()),
                hint="is the database running? check the result backend URL",
            ) from exc

    def _tx(self, what: str, op: Any) -> Any:
        engine = self.engine
        return self._run(lambda: _in_tx(engine, op), what)

    def check(self) -> None:
        self._tx("connect", lambda conn: None)

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    # ------------------------------------------------------------------ results

    def _set(self, task_id: str, doc: dict[str, Any]) -> None:
        t = self.task_table
        children = doc.get("children") or None
        values = {
            "status": doc["status"],
            "result": self.codec.encode(doc.get("result")),
            "date_done": _naive_utc(doc.get("date_done")),
            "traceback": doc.get("traceback"),
            "children": self.codec.encode(children) if children else None,
        }

        def write(conn: Any) -> None:
            sa = _sa()
            row = conn.execute(
                sa.select(t.c.status).where(t.c.task_id == task_id).with_for_update()
            ).first()
            if row is None:
                conn.execute(t.insert().values(task_id=task_id, **values))
            elif row.status != "SUCCESS":
                conn.execute(t.update().where(t.c.task_id == task_id).values(**values))

        self._tx("store result", write)

    def store(self, doc: Mapping[str, Any]) -> None:
        """One transaction: the row lock decides (a stored SUCCESS stays)."""
        self._set(str(doc["task_id"]), dict(doc))

    def _get(self, task_id: str) -> dict[str, Any] | None:
        t = self.task_table
        sa = _sa()
        row = self._tx(
            "get",
            lambda conn: conn.execute(
                sa.select(t.c.status, t.c.result, t.c.traceback, t.c.children, t.c.date_done).where(
                    t.c.task_id == task_id
                )
            ).first(),
        )
        if row is None:
            return None
        done = row.date_done.replace(tzinfo=UTC) if row.date_done is not None else None
        ready = row.status in ("SUCCESS", "FAILURE", "REVOKED")
        return {
            "status": row.status,
            "result": self.codec.decode(row.result),
            "traceback": row.traceback,
            "children": self.codec.decode(row.children) or [],
            "date_done": format_iso(done) if done is not None and ready else None,
            "task_id": task_id,
        }

    def _delete(self, task_id: str) -> None:
        t = self.task_table
        self._tx("forget", lambda conn: conn.execute(t.delete().where(t.c.task_id == task_id)))

    def save_group(self, group_id: str, members: Sequence[Any]) -> None:
        g = self.group_table
        value = self.codec.encode([[group_id, None], list(members)])
        now = datetime.now(UTC).replace(tzinfo=None)
        self._tx(
            "save group",
            lambda conn: conn.execute(
                g.insert().values(taskset_id=group_id, result=value, date_done=now)
            ),
        )

    def restore_group(self, group_id: str) -> list[Any] | None:
        g = self.group_table
        sa = _sa()
        row = self._tx(
            "get group",
            lambda conn: conn.execute(
                sa.select(g.c.result).where(g.c.taskset_id == group_id)
            ).first(),
        )
        if row is None:
            return None
        value = self.codec.decode(row.result)
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], list):
            return list(value[1])
        return None

    def delete_group(self, group_id: str) -> None:
        g = self.group_table
        self._tx(
            "delete group",
            lambda conn: conn.execute(g.delete().where(g.c.taskset_id == group_id)),
        )

    def cleanup(self, expires: float | None = None) -> int:
        """Delete results older than ``expires`` seconds (``celery.backend_cleanup``)."""
        from datetime import timedelta

        ttl = self.expires if expires is None else expires
        if not ttl:
            return 0
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=ttl)
        t, g = self.task_table, self.group_table

        def purge(conn: Any) -> int:
            n = conn.execute(t.delete().where(t.c.date_done < cutoff)).rowcount
            n += conn.execute(g.delete().where(g.c.date_done < cutoff)).rowcount
            return int(n or 0)

        return int(self._tx("cleanup", purge))


def _create_tables(sa: Any, md: Any, engine: Any, attempts: int = 3) -> None:
    """Create the missing tables and sequences, also when another process does it at the same
    moment (workers started together on a fresh database): the loser of that race sees "already
    exists" (or, on PostgreSQL, a duplicate ``pg_type`` row) and checks again, finding them."""
    for attempt in range(1, attempts + 1):
        try:
            md.create_all(engine, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)


def _in_tx(engine: Any, op: Any) -> Any:
    with engine.begin() as conn:
        return op(conn)
