"""The pool's result writer (worker/pool/result_writer.py) against a backend double: every
queued result is stored, in order, and a job's "done" callback runs only after its result was
stored or, when the backend stays down, after the loss was logged with the task id."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from amqptool.backends import Backend, retrying
from amqptool.codec.results import PENDING, SUCCESS, result_body
from amqptool.errors import ConnectionFailedError, UsageError
from worker.pool import result_writer
from worker.pool.result_writer import ResultWriter
from worker.pool.results import ResultStore


class FakeBackend(Backend):
    """Records each batch; fails the first ``down`` calls (or all, with ``down=-1``)."""

    batches = True

    def __init__(self, down: int = 0, refuse: str | None = None) -> None:
        super().__init__("redis://fake")
        self.down = down
        self.refuse = refuse  # a task id whose document is refused (not a connection error)
        self.batches_seen: list[list[dict[str, Any]]] = []
        self.stored: list[dict[str, Any]] = []
        self.calls = 0
        self.lock = threading.Lock()

    def store_many(self, docs: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any]]:
        with self.lock:
            self.calls += 1
            if self.down < 0 or self.calls <= self.down:
                raise ConnectionFailedError("redis is down")
            self.batches_seen.append([dict(d) for d in docs])
            failed: list[tuple[Mapping[str, Any], Any]] = []
            for doc in docs:
                if doc["task_id"] == self.refuse:
                    failed.append((doc, UsageError("cannot serialize")))
                else:
                    self.stored.append(dict(doc))
            return failed


class FakeStore(ResultStore):
    def __init__(self, backend: FakeBackend) -> None:
        super().__init__("redis://fake")
        self.fake = backend

    @property
    def backend(self) -> Backend:
        return self.fake


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_writer, "retrying", functools.partial(retrying, pause=0.001))


@pytest.fixture
def writer() -> Iterator[ResultWriter]:
    w = ResultWriter(max_batch=50, max_pending=200)
    yield w
    assert w.wait_idle(10)


def _doc(i: int, status: str = SUCCESS) -> dict[str, Any]:
    return result_body(f"task-{i}", status, i)


def test_every_result_is_stored_in_order_and_done_comes_after_it(writer: ResultWriter) -> None:
    backend = FakeBackend()
    store = FakeStore(backend)
    seen_at_done: dict[int, set[str]] = {}

    def worker_thread(offset: int) -> None:
        for i in range(offset, offset + 100):
            writer.put(store, _doc(i))

            def done(i: int = i) -> None:
                with backend.lock:
                    seen_at_done[i] = {d["task_id"] for d in backend.stored}

            if not writer.after(done):
                done()

    threads = [threading.Thread(target=worker_thread, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert writer.wait_idle(10)
    assert len(seen_at_done) == 400
    for i, stored_then in seen_at_done.items():
        assert f"task-{i}" in stored_then  # its result was stored before its "done"
    ids = [d["task_id"] for d in backend.stored]
    assert sorted(ids) == sorted(f"task-{i}" for i in seen_at_done)
    for n in range(4):  # each thread's results in the order it queued them
        mine = [
            int(t.split("-")[1]) for t in ids if n * 1000 <= int(t.split("-")[1]) < n * 1000 + 1000
        ]
        assert mine == sorted(mine)
    assert all(len(b) <= 50 for b in backend.batches_seen)


def test_the_documents_are_stored_as_built_with_date_done_at_the_write(
    writer: ResultWriter,
) -> None:
    backend = FakeBackend()
    store = FakeStore(backend)
    ready, pending = _doc(1), result_body("task-2", PENDING, None)
    writer.put(store, ready)
    writer.put(store, pending)
    assert writer.wait_idle(10)
    one, two = backend.stored
    assert list(one) == list(ready)  # Celery's key order
    assert {k: v for k, v in one.items() if k != "date_done"} == {
        k: v for k, v in ready.items() if k != "date_done"
    }
    assert one["date_done"] >= ready["date_done"]
    assert two == pending  # no date_done for a state that is not ready


def test_a_backend_down_for_a_while_holds_done_until_the_results_are_stored(
    writer: ResultWriter, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend(down=3)
    store = FakeStore(backend)
    done = threading.Event()
    stored_at_done: list[int] = []

    def on_done() -> None:
        stored_at_done.append(len(backend.stored))
        done.set()

    with caplog.at_level(logging.WARNING):
        writer.put(store, _doc(1))
        assert writer.after(on_done)  # queued: the result is not stored yet
        assert done.wait(10)
    assert stored_at_done == [1]
    assert backend.calls == 4
    assert any("task-1" in r.getMessage() and "retry" in r.getMessage() for r in caplog.records)
    assert not any("NOT stored" in r.getMessage() for r in caplog.records)


def test_a_backend_that_stays_down_logs_each_lost_result_then_reports_done(
    writer: ResultWriter, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend(down=-1)
    store = FakeStore(backend)
    done = threading.Event()
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            writer.put(store, _doc(i))
        assert writer.after(done.set)
        assert done.wait(10)
    lost = [r.getMessage() for r in caplog.records if "NOT stored" in r.getMessage()]
    assert sorted(m.split(":")[0] for m in lost) == ["task task-0", "task task-1", "task task-2"]
    assert all(r.levelno == logging.ERROR for r in caplog.records if "NOT stored" in r.getMessage())
    assert backend.stored == []


def test_one_refused_result_is_logged_and_the_others_stored(
    writer: ResultWriter, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend(refuse="task-1")
    store = FakeStore(backend)
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            writer.put(store, _doc(i))
        assert writer.wait_idle(10)
    assert [d["task_id"] for d in backend.stored] == ["task-0", "task-2"]
    lost = [r.getMessage() for r in caplog.records if "NOT stored" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].startswith("task task-1: result SUCCESS NOT stored")


def test_after_says_run_it_now_when_nothing_is_unstored(writer: ResultWriter) -> None:
    assert writer.after(lambda: None) is False
    backend = FakeBackend(down=-1)
    writer.put(FakeStore(backend), _doc(1))
    ran = threading.Event()
    assert writer.after(ran.set) is True
    assert ran.wait(10)
    assert writer.after(lambda: None) is False


def test_only_pool_threads_defer_and_only_to_a_batching_backend() -> None:
    seen: list[bool] = []
    t = threading.Thread(target=lambda: seen.append(result_writer.deferring()))
    t.start()
    t.join()

    def pool_thread() -> None:
        result_writer.defer_here()
        seen.append(result_writer.deferring())

    t = threading.Thread(target=pool_thread)
    t.start()
    t.join()
    assert seen == [False, True]
    assert not result_writer.deferring()  # this thread was never marked


def test_while_the_backend_is_away_pool_threads_wait_instead_of_running_on(
    writer: ResultWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when each pool thread stored its own result: a thread with a result to store waits
    while the backend is unreachable, so tasks do not run on and lose their results."""
    monkeypatch.setattr(result_writer, "retrying", functools.partial(retrying, pause=0.2))
    backend = FakeBackend()
    up = threading.Event()
    real = backend.store_many

    def store_many(docs: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any]]:
        with backend.lock:
            backend.calls += 1
        if not up.is_set():
            raise ConnectionFailedError("redis is down")
        return real(docs)

    monkeypatch.setattr(backend, "store_many", store_many)
    store = FakeStore(backend)
    writer.put(store, _doc(1))
    result_writer_wait = threading.Event()
    stored_when_put_returned: list[int] = []

    def second() -> None:
        result_writer_wait.set()
        writer.put(store, _doc(2))
        stored_when_put_returned.append(len(backend.stored))

    def failing_seen() -> bool:
        with backend.lock:
            return backend.calls >= 1

    deadline = threading.Event()
    while not failing_seen():
        deadline.wait(0.01)
    t = threading.Thread(target=second)
    t.start()
    assert result_writer_wait.wait(10)
    t.join(0.3)
    assert t.is_alive()  # waiting: its result is not queued while the backend is away
    up.set()
    t.join(10)
    assert writer.wait_idle(10)
    assert stored_when_put_returned and stored_when_put_returned[0] >= 1
    assert [d["task_id"] for d in backend.stored] == ["task-1", "task-2"]
