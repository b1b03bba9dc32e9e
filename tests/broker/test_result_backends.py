"""Our result backends against real Redis, PostgreSQL, MariaDB and SQLite, read back by
Celery 5.7's own backend code (and the other way round): same keys, rows and encodings."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amqptool.backends import Backend, backend_from_url, result_document
from amqptool.errors import ConnectionFailedError, DecodeError, UsageError
from tests.backend_support import REDIS_URL, forget_redis_keys, mariadb_database, postgres_database

KINDS = ["redis", "postgresql", "mariadb", "sqlite"]


@pytest.fixture(params=KINDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind = request.param
    if kind == "redis":
        yield REDIS_URL
    elif kind == "postgresql":
        with postgres_database() as url:
            yield url
    elif kind == "mariadb":
        with mariadb_database() as url:
            yield url
    else:
        yield f"db+sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def ids() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    forget_redis_keys(made)


def _celery_backend(url: str) -> Any:
    from celery import Celery

    # Celery's own URL for MariaDB through PyMySQL (MySQLdb is not installed here).
    app = Celery(
        "reader", broker="memory://", backend=url.replace("db+mysql:", "db+mysql+pymysql:")
    )
    return app


def _new(ids: list[str]) -> str:
    one = str(uuid.uuid4())
    ids.append(one)
    return one


def test_celery_reads_what_we_store(backend_url: str, ids: list[str]) -> None:
    ours = backend_from_url(backend_url)
    ours.check()
    app = _celery_backend(backend_url)
    ok, bad, child = _new(ids), _new(ids), _new(ids)
    ours.store(result_document(ok, "SUCCESS", {"x": [1, 2]}, children=[[[child, None], None]]))
    ours.store(result_document(bad, "FAILURE", KeyError("nope"), traceback="Traceback ..."))
    assert app.AsyncResult(ok).get(timeout=5) == {"x": [1, 2]}
    assert [r.id for r in app.AsyncResult(ok).children] == [child]
    failed = app.AsyncResult(bad)
    assert failed.state == "FAILURE"
    assert isinstance(failed.result, KeyError)
    assert failed.traceback == "Traceback ..."
    app.close()


def test_we_read_what_celery_stores(backend_url: str, ids: list[str]) -> None:
    ours = backend_from_url(backend_url)
    app = _celery_backend(backend_url)
    tid, gid = _new(ids), _new(ids)
    app.backend.store_result(tid, {"done": 50}, "PROGRESS")
    assert ours.get(tid)["status"] == "PROGRESS"
    assert ours.get(tid)["result"] == {"done": 50}
    app.backend.mark_as_done(tid, 4)
    doc = ours.wait_for(tid, timeout=5)
    assert (doc["status"], doc["result"]) == ("SUCCESS", 4)
    assert doc["date_done"]
    app.GroupResult(gid, [app.AsyncResult(tid)]).save()
    assert ours.restore_group(gid) == [[[tid, None], None]]
    ours.save_group(_new(ids), [[[tid, None], None]])
    app.close()


def test_success_is_never_overwritten_and_forget_drops(backend_url: str, ids: list[str]) -> None:
    ours = backend_from_url(backend_url)
    tid = _new(ids)
    ours.store(result_document(tid, "SUCCESS", 1))
    ours.store(result_document(tid, "STARTED", None))
    assert ours.get(tid)["status"] == "SUCCESS"
    ours.forget(tid)
    assert ours.get(tid)["status"] == "PENDING"


def test_wait_for_times_out_on_pending(backend_url: str, ids: list[str]) -> None:
    from amqptool.errors import TaskTimeoutError

    with pytest.raises(TaskTimeoutError):
        backend_from_url(backend_url).wait_for(_new(ids), timeout=0.3)


def test_pickle_is_refused_unless_accepted(ids: list[str]) -> None:
    writer = backend_from_url(REDIS_URL, serializer="pickle", accept=["pickle"])
    tid = _new(ids)
    writer.store(result_document(tid, "SUCCESS", {1, 2}))
    assert writer.get(tid)["result"] == {1, 2}
    with pytest.raises(DecodeError):
        backend_from_url(REDIS_URL).get(tid)


@pytest.mark.parametrize(
    "url", ["bogus://x", "redis://host:notaport/0", "rpc://", "db+nosuchdb://x/y"]
)
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        backend_from_url(url).check()


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "db+postgresql://postgres@127.0.0.1:1/test"]
)
def test_unreachable_backend_is_a_connection_error(url: str) -> None:
    backend: Backend = backend_from_url(url)
    with pytest.raises(ConnectionFailedError):
        backend.check()


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_workers_starting_together_on_a_fresh_database_all_get_their_tables(
    kind: str, tmp_path: Path
) -> None:
    """Every starter checks for the tables and creates the missing ones; the ones that lose
    that race see "already exists" and must check again, not fail the worker's start."""
    import threading

    with contextlib.ExitStack() as stack:
        if kind == "postgresql":
            url = stack.enter_context(postgres_database())
        elif kind == "mariadb":
            url = stack.enter_context(mariadb_database())
        else:
            url = f"db+sqlite:///{tmp_path / 'fresh.db'}"
        backends = [backend_from_url(url) for _ in range(8)]
        for b in backends:
            stack.callback(b.close)
        go = threading.Barrier(len(backends))
        failed: list[BaseException] = []

        def start(backend: Backend) -> None:
            go.wait(timeout=30)
            try:
                backend.check()
            except BaseException as exc:  # recorded, the test names it
                failed.append(exc)

        threads = [threading.Thread(target=start, args=(b,)) for b in backends]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert failed == []
        one = str(uuid.uuid4())
        backends[0].store(result_document(one, "SUCCESS", 7))
        assert all(b.get(one)["result"] == 7 for b in backends)
