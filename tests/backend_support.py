"""Result backends for tests: a database of its own per session, Redis keys cleaned up.

PostgreSQL and MariaDB get a fresh database (``amqptool_<hex>``) for the session, dropped at
the end; Redis keys are Celery's fixed names with unique task/group ids, deleted by
:func:`forget_redis_keys`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc"]
MARIA_ADMIN = ["mariadb", "-h", "127.0.0.1", "-uroot", "-e"]


def _sql(cmd: list[str], statement: str) -> None:
    subprocess.run([*cmd, statement], check=True, capture_output=True, timeout=60)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A ``db+postgresql://`` URL for a new database, dropped afterwards."""
    name = f"amqptool_{uuid.uuid4().hex[:12]}"
    _sql(PG_ADMIN, f"CREATE DATABASE {name}")
    try:
        yield f"db+postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _sql(PG_ADMIN, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A ``db+mysql://`` URL for a new database, dropped afterwards."""
    name = f"amqptool_{uuid.uuid4().hex[:12]}"
    _sql(MARIA_ADMIN, f"CREATE DATABASE {name}")
    try:
        yield f"db+mysql://root@127.0.0.1:3306/{name}"
    finally:
        _sql(MARIA_ADMIN, f"DROP DATABASE IF EXISTS {name}")


def forget_redis_keys(ids: Iterable[str], url: str = REDIS_URL) -> None:
    """Delete the task and group keys (and chord keys) of these ids."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for one in set(ids):
            client.delete(f"celery-task-meta-{one}", f"celery-taskset-meta-{one}")
            for suffix in (".j", ".t", ".s", ".d", ".c"):
                client.delete(f"celery-taskset-meta-{one}{suffix}")
    finally:
        client.close()
