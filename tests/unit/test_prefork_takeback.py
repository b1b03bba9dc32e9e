"""The prefork pool takes back jobs waiting in a child's pipe: from behind a long task
(``rebalance``) and for a revoke (``take_back_waiting``). A job taken back is never also run
by the child it was written to, and a job not taken back is never dropped."""

from __future__ import annotations

import random
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import pytest

from amqptool.codec.tasks import TaskMessage
from tests.peers import amqptool_tasks as peer
from worker.pool.base import Done, Report, Skipped, Started
from worker.pool.execute import Job
from worker.pool.prefork import STUCK_AFTER, PreforkPool

TASKS = {t.name: t for t in (peer.sleep, peer.add)}


class SelectLoop:
    """Just enough of the broker thread's I/O loop for the pool: level-triggered readers."""

    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)

    def wake(self) -> None:
        pass

    def run_once(self, timeout: float) -> None:
        ready, _, _ = select.select(list(self.readers), [], [], timeout)
        for fd in ready:
            callback = self.readers.get(fd)
            if callback is not None:
                callback()


class Harness:
    def __init__(self, pool: PreforkPool) -> None:
        self.pool = pool
        self.loop = SelectLoop()
        self.outbox: deque[Report] = deque()
        self.reports: list[Report] = []
        self.seq = 0
        pool.start(lambda items: None)
        pool.bind_loop(self.loop, self.outbox)

    def send(self, task: str, *args: object) -> int:
        self.seq += 1
        self.apply(Job(self.seq, TaskMessage(task=task, args=list(args)), "q", {}, "n@h"))
        return self.seq

    def apply(self, job: Job) -> None:
        assert self.pool.can_accept()
        self.pool.apply(job)

    def turn(self, timeout: float = 0.02) -> None:
        self.pool.flush()
        self.loop.run_once(timeout)
        while self.outbox:
            report = self.outbox.popleft()
            self.reports.append(report)
            if isinstance(report, Done | Skipped):
                self.pool.job_done(report.seq)

    def done(self) -> list[int]:
        return [r.seq for r in self.reports if isinstance(r, Done)]

    def started(self) -> list[tuple[int, int]]:
        return [(r.seq, r.pid) for r in self.reports if isinstance(r, Started)]


@pytest.fixture
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    concurrency, depth = request.param
    pool = PreforkPool(TASKS, concurrency, depth=depth)
    h = Harness(pool)
    try:
        yield h
    finally:
        pool.terminate()


def run_until(h: Harness, done: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, f"reports so far: {h.reports}"
        h.turn()


@pytest.mark.parametrize("harness", [(2, 6)], indirect=True)
def test_jobs_behind_a_long_task_are_taken_back_and_run_on_the_other_child(
    harness: Harness,
) -> None:
    h = harness
    long = h.send("peer.sleep", 1.5)  # the child with the fewest jobs gets each next one
    short = [h.send("peer.add", i, i) for i in range(8)]  # half of them queue behind `long`
    taken: list[int] = []
    while not set(short) <= set(h.done()):
        h.turn()
        back, recheck = h.pool.rebalance(time.monotonic())
        assert recheck is None or recheck <= STUCK_AFTER
        for seq in back:  # what the consumer does: run them first, elsewhere
            taken.append(seq)
            h.apply(Job(seq, TaskMessage(task="peer.add", args=[0, 0]), "q", {}, "n@h"))
    assert taken, "nothing waited behind the long task"
    assert long not in h.done()  # every short job ran while the long one still slept
    long_pid = next(pid for seq, pid in h.started() if seq == long)
    starts = h.started()
    for seq in taken:  # each taken-back job started once, on the other child
        assert [pid for s, pid in starts if s == seq] == [next(p for s, p in starts if s == seq)]
        assert next(p for s, p in starts if s == seq) != long_pid
    run_until(h, lambda: long in h.done())
    assert sorted(h.done()) == sorted([long, *short])


@pytest.mark.parametrize("harness", [(1, 6)], indirect=True)
def test_a_job_is_either_taken_back_or_run_never_both_never_neither(harness: Harness) -> None:
    """Take back at random moments while the child works through its pipe."""
    h = harness
    rng = random.Random(7)
    taken: set[int] = set()
    sent: set[int] = set()
    for _ in range(60):
        while h.pool.can_accept():
            sent.add(h.send("peer.add", 1, 2))
        h.pool.flush()
        time.sleep(rng.choice([0, 0, 0.0002, 0.001, 0.003]))
        taken.update(h.pool.take_back_waiting())
        h.turn(0)
    run_until(h, lambda: set(h.done()) | taken == sent)
    started = [seq for seq, _ in h.started()]
    assert len(started) == len(set(started))  # none twice
    assert not set(started) & taken  # nothing taken back also ran
    assert set(started) | taken == sent  # nothing lost
    assert taken and started  # both happened: the race was exercised


@pytest.mark.parametrize("harness", [(1, 6)], indirect=True)
def test_a_claims_lock_held_for_ever_does_not_hang_the_broker_thread(harness: Harness) -> None:
    """A child killed inside its few microseconds under the lock would hold it for ever: taking
    back then gives up after a bounded wait instead of blocking the loop."""
    h = harness
    first = h.send("peer.sleep", 1.0)
    behind = [h.send("peer.add", i, i) for i in range(3)]
    run_until(h, lambda: first in [seq for seq, _ in h.started()])
    child = h.pool._children[0]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with child.claims.get_lock():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        assert h.pool.take_back_waiting() == []  # gave up; nothing half taken
        h.pool.rebalance(time.monotonic())  # sees the long job start ...
        assert h.pool.rebalance(time.monotonic() + 60)[0] == []  # ... and cannot take back
        assert not child.stuck_on
    finally:
        release.set()
        holder.join(5)
    taken = h.pool.take_back_waiting()
    assert taken == behind  # once the lock is free, they come back
    run_until(h, lambda: first in h.done())
    assert not {seq for seq, _ in h.started()} & set(taken)
