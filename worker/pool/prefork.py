"""The prefork pool: one child process per slot, forked (children inherit the task modules).

Each child has two raw pipes (frames of :mod:`worker.pool.frames`): jobs in, reports out. The
broker thread keeps up to ``depth`` jobs (:data:`DEPTH`: the running one and five queued) in
each child's pipe, so a child runs task after task without waiting for a round trip to the
parent; with two (the running one plus one) a child idled while the parent turned round, and
the default configuration ran 30-45 % slower (``bench/bench_worker.py``). The jobs the broker
thread dispatches in one loop turn are written together (:meth:`PreforkPool.flush`: one
pickled list, one system call and one wake-up per child, not per task; the per-task write was
the broker thread's largest cost in the profile). A child reports ``Started(seq, pid)`` before
running a job (the parent acks then), then ``Done(seq, outcome)``. The parent reads every report
pipe and process sentinel in the broker thread's own I/O loop (:meth:`PreforkPool.bind_loop`,
after each connect): no reader thread, no hand-off between threads and no wake-up socket per
report (the reader thread and its hand-offs were a fifth of the parent's CPU per task).

A long task holds nothing back (what Celery's ``-O fair`` promises): once a job has run
:data:`STUCK_AFTER` with others waiting behind it in the same pipe, :meth:`PreforkPool.rebalance`
takes those back and the broker thread runs them first on another child (or keeps them, unacked,
until one is free); the busy child gets no new job until its long one is done. A revoke takes
back every job still waiting in a pipe (:meth:`PreforkPool.take_back_waiting`), so it is checked
again before it starts. Taking back is safe against the child starting the same job at that
moment: each side counts the jobs in the pipe, and the child claims a job's position, or sees
it taken, under one shared lock (``prefork_child.serve_jobs``).

Jobs dispatched before :meth:`PreforkPool.take_unstarted` (warm shutdown, connection lost) are
skipped by the child (a shared "skip up to" sequence number) and reported
``Skipped(seq, "unstarted")``, so the parent gives their messages back unacked.

When a child dies (its sentinel becomes readable), its last reports are read and ``Died(slot,
exitcode)`` follows them; the broker thread calls
:meth:`PreforkPool.child_died`, which forks a replacement and returns the jobs the dead child
still held: the started one is lost (``WorkerLostError``, or requeued with
``reject_on_worker_lost``), the others simply run elsewhere.

Children ignore SIGINT (a Ctrl-C in a terminal reaches the whole process group; the parent
decides about shutdown) and keep the default SIGTERM.

Time limits (:mod:`worker.policy.time_limits`, :mod:`worker.runtime.pipeline.watch`): a child arms a
``SIGALRM`` timer for the soft limit of each job, which raises ``SoftTimeLimitExceeded`` in the
task; for the hard limit (and ``revoke(terminate=True)``) the broker thread signals the child
through :meth:`PreforkPool.kill_job`, which checks the child's shared "running now" number first so
it never hits the next task. With ``max_tasks_per_child`` a child is sent a stop marker after its
last job, exits when done and is replaced.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from worker.pool.base import (
    Died,
    Notify,
    Precheck,
    Report,
)
from worker.pool.execute import Job
from worker.pool.frames import FrameReader, write_frame
from worker.pool.prefork_child import CLAIMED, TAKEN, child_main, without_after_fork_hooks
from worker.task.define import Task

__all__ = ["PreforkPool", "ReaderLoop"]

log = logging.getLogger("worker.pool")
_ctx = multiprocessing.get_context("fork")

DEPTH = 6  # jobs in a child's pipe at most: the running one and those queued behind it
STUCK_AFTER = 0.1  # s a job may run with others waiting behind it before they are taken back
CLAIM_WAIT = 0.05  # s at most the broker thread waits for a child's claims lock


class ReaderLoop(Protocol):
    """The broker thread's I/O loop, as the pool uses it (level-triggered readers)."""

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None: ...

    def remove_reader(self, fd: int) -> None: ...

    def wake(self) -> None:
        """End the loop's current wait (called from a reader's callback)."""


class _Child:
    def __init__(
        self,
        slot: int,
        tasks: Mapping[str, Task],
        skip: Any,
        max_tasks: int | None = None,
        inherited: Sequence[int] = (),
    ) -> None:
        self.slot = slot
        job_r, self.jobs = os.pipe()
        self.reports, rep_w = os.pipe()
        self.current = _ctx.Value("q", 0, lock=False)  # the seq it runs now (0: none)
        self.claims = _ctx.Array("q", 2)  # [CLAIMED, TAKEN] positions (prefork_child.serve_jobs)
        parent_ends = (*inherited, self.jobs, self.reports)
        self.proc = _ctx.Process(
            target=child_main,
            args=(job_r, rep_w, tasks, skip, self.current, self.claims, parent_ends, os.getpid()),
            name=f"worker-pool-{slot + 1}",
            daemon=True,
        )
        with without_after_fork_hooks():
            self.proc.start()
        os.close(job_r)
        os.close(rep_w)
        os.set_blocking(self.reports, False)  # read from the broker thread's I/O loop
        self.reader = FrameReader(self.reports)
        self.sentinel = self.proc.sentinel
        self.queued: deque[int] = deque()
        self.sent = 0  # jobs dispatched to it so far: the position of the last one in its pipe
        self.position: dict[int, int] = {}  # seq -> its position, while queued
        self.seen = 0  # the running seq the last rebalance saw, and since when
        self.seen_at = 0.0
        self.stuck_on = 0  # its jobs were taken back from behind this one: no new ones until done
        self.outgoing: list[Job | None] = []  # dispatched, written to the pipe by flush()
        self.dead = False
        self.watched: list[int] = []  # its fds in the broker thread's loop (bind_loop)
        self.retiring = False  # pool_shrink: takes no new job, exits when its pipe is empty
        self.left = max_tasks  # --max-tasks-per-child: jobs it may still be given (None: any)
        self.signalled = False  # kill_job() signalled it (time limit, terminate)

    @property
    def open(self) -> bool:
        """Takes new jobs: alive, not retiring, not at its --max-tasks-per-child, not busy with
        a long job that others were taken back from."""
        return not self.dead and not self.retiring and self.left != 0 and not self.stuck_on

    def take_back(self) -> list[int]:
        """The jobs in its pipe it has not taken yet, taken back (it will pass over them).

        The child holds the lock for a few microseconds per job; one killed inside them (a
        signal, the OOM killer) would hold it for ever, so the wait is bounded: nothing is
        taken back then (the dead child's jobs come back with ``Died``; a live one's on the
        next look)."""
        lock = self.claims.get_lock()
        if not lock.acquire(timeout=CLAIM_WAIT):
            return []
        try:
            claimed = self.claims[CLAIMED]
            waiting = [seq for seq in self.queued if self.position[seq] > claimed]
            if waiting:
                self.claims[TAKEN] = self.sent
        finally:
            lock.release()
        for seq in waiting:
            self.queued.remove(seq)
            del self.position[seq]
        return waiting

    @property
    def pid(self) -> int:
        return self.proc.pid or 0

    def send(self, items: list[Job | None]) -> None:
        """Write what was dispatched since the last write, then ``items``, in one message."""
        batch, self.outgoing = self.outgoing + items, []
        if batch:
            write_frame(self.jobs, batch)

    def close(self) -> None:
        jobs, reports, self.jobs, self.reports = self.jobs, self.reports, -1, -1
        for fd in (jobs, reports):  # once: a closed number is soon another file's
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


class PreforkPool:
    """``concurrency`` forked children, each running one task at a time."""

    name = "prefork"
    implementation = "worker.prefork:PreforkPool"
    handles_soft_limits = True  # a SIGALRM timer in the child (worker.policy.time_limits)

    def __init__(
        self,
        tasks: Mapping[str, Task],
        concurrency: int,
        *,
        depth: int = DEPTH,
        max_tasks_per_child: int | None = None,
    ) -> None:
        self.tasks = tasks
        self.concurrency = max(1, concurrency)
        self.depth = max(1, depth)
        self.max_tasks_per_child = max_tasks_per_child or None
        self._children: list[_Child] = []
        self._by_seq: dict[int, _Child] = {}
        self._lock = threading.Lock()
        self._skip = _ctx.Value("q", 0, lock=False)
        self._last_seq = 0
        self._stopping = False
        self._loop: ReaderLoop | None = None
        self._outbox: deque[Report] | None = None
        self.write_stats: Counter[int] = Counter()  # jobs written to each child slot

    # ------------------------------------------------------------------ lifecycle

    def start(self, notify: Notify, precheck: Precheck | None = None) -> None:
        self._notify = notify
        with self._lock:
            self._children = []
            for slot in range(self.concurrency):  # one by one: each closes its elders' ends
                self._children.append(self._fork(slot))

    def _fork(self, slot: int) -> _Child:
        inherited: list[int] = []
        for child in self._children:
            inherited += (child.jobs, child.reports)
        child = _Child(slot, self.tasks, self._skip, self.max_tasks_per_child, inherited)
        if self._loop is not None:
            self._watch(child)
        return child

    # ------------------------------------------------------------------ reading reports

    def bind_loop(self, loop: ReaderLoop | None, outbox: deque[Report] | None = None) -> None:
        """Read the children's reports in ``loop`` (the broker thread's I/O loop, after each
        connect) into ``outbox`` and end the loop's wait; ``None``: stop reading (connection
        lost). No thread and no cross-thread wake-up per report."""
        old, self._loop = self._loop, None
        for c in self._children:
            if old is not None:
                self._unwatch(old, c)
            c.watched = []
        self._loop, self._outbox = loop, outbox if loop is not None else None
        if loop is not None:
            for c in self._children:
                if not c.dead:
                    self._watch(c)

    def _watch(self, child: _Child) -> None:
        loop = self._loop
        assert loop is not None
        if not child.reader.eof:
            loop.add_reader(child.reports, lambda: self._on_reports(child))
            child.watched.append(child.reports)
        loop.add_reader(child.sentinel, lambda: self._on_exit(child))
        child.watched.append(child.sentinel)

    @staticmethod
    def _unwatch(loop: ReaderLoop, child: _Child) -> None:
        fds, child.watched = child.watched, []
        for fd in fds:  # only those still registered: a number once closed is soon reused
            with contextlib.suppress(Exception):  # a loop that is closing
                loop.remove_reader(fd)

    def _on_reports(self, child: _Child) -> None:
        """The report pipe is readable: one read, its whole frames delivered."""
        try:
            items = child.reader.read()
        except OSError:
            items = []
            child.reader.eof = True
        if child.reader.eof and child.reports in child.watched:  # exiting: the sentinel follows
            child.watched.remove(child.reports)
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(child.reports)
        if items:
            self._deliver(items)

    def _on_exit(self, child: _Child) -> None:
        """The child exited: its last reports, then ``Died``."""
        if child.dead:
            return
        if self._loop is not None:
            self._unwatch(self._loop, child)
        try:
            items: list[Report] = child.reader.drain()
        except Exception:  # a report that does not unpickle: the job is reported lost later
            log.exception("pool: unreadable report from child %s", child.pid)
            items = []
        child.dead = True
        child.proc.join(0.5)
        items.append(Died(child.slot, child.proc.exitcode))
        self._deliver(items)

    def _deliver(self, items: list[Report]) -> None:
        if self._outbox is not None and self._loop is not None:
            self._outbox.extend(items)
            self._loop.wake()

    # ------------------------------------------------------------------ broker-thread side

    def can_accept(self) -> bool:
        depth = self.depth
        return any(len(c.queued) < depth and c.open for c in self._children)

    def apply(self, job: Job) -> int | None:
        depth = self.depth
        free = [c for c in self._children if c.open and len(c.queued) < depth]
        best = min(free, key=lambda c: len(c.queued), default=None)
        if best is None:
            raise RuntimeError("prefork pool: no free child (apply without can_accept)")
        best.queued.append(job.seq)
        best.sent += 1
        best.position[job.seq] = best.sent
        self.write_stats[best.slot] += 1
        self._by_seq[job.seq] = best
        self._last_seq = max(self._last_seq, job.seq)
        best.outgoing.append(job)  # written by flush(), with the others of this turn
        if best.left is not None:
            best.left -= 1
            if best.left == 0:  # its last job: it exits after it and is replaced
                best.outgoing.append(None)
        return None

    def flush(self) -> None:
        """Write the jobs dispatched since the last call: one pipe message per child (one
        system call and one wake-up of the child for all of them)."""
        for child in self._children:
            if child.outgoing:
                if child.dead:
                    child.outgoing = []  # child_died() gives its jobs back from ``queued``
                    continue
                with contextlib.suppress(OSError, ValueError):  # died: the reader reports it
                    child.send([])

    def kill_job(self, seq: int, signum: int) -> bool:
        """Send ``signum`` to the child running job ``seq`` (False when it is not running it)."""
        child = self._by_seq.get(seq)
        if child is None or child.dead or child.current.value != seq:
            return False
        try:
            os.kill(child.pid, signum)
        except ProcessLookupError:
            return False
        child.signalled = True
        return True

    def raise_in_job(self, seq: int, exc_type: type[BaseException]) -> bool:
        return False  # children raise SoftTimeLimitExceeded themselves; hard limits kill

    def job_done(self, seq: int) -> None:
        child = self._by_seq.pop(seq, None)
        if child is not None:
            with contextlib.suppress(ValueError):
                child.queued.remove(seq)
            child.position.pop(seq, None)
            if child.stuck_on == seq:
                child.stuck_on = 0

    def rebalance(self, now: float) -> tuple[list[int], float | None]:
        """Take back the jobs waiting behind one that has run ``STUCK_AFTER`` s or more (a
        long task): they run on another child instead (or wait, unacked, for the first free
        one), and that child gets no new job until its long one is done. Returns the seqs taken
        back and how soon to look again (None: no job waits behind a running one)."""
        taken: list[int] = []
        recheck: float | None = None
        for child in self._children:
            if child.dead or child.stuck_on or len(child.queued) < 2:
                continue
            running = child.current.value
            if running != child.seen:
                child.seen, child.seen_at = running, now
            waited = now - child.seen_at
            if running == 0 or waited < STUCK_AFTER:  # between jobs, or not long yet
                left = STUCK_AFTER - waited if running else STUCK_AFTER
                recheck = left if recheck is None else min(recheck, left)
                continue
            back = self._take_back(child)
            if back:
                child.stuck_on = running
                taken += back
        return taken, recheck

    def take_back_waiting(self) -> list[int]:
        """Every job waiting in a child's pipe, taken back (to be checked again: a revoke)."""
        return [seq for child in self._children if not child.dead for seq in self._take_back(child)]

    def _take_back(self, child: _Child) -> list[int]:
        back = child.take_back()
        for seq in back:
            self._by_seq.pop(seq, None)
        return back

    def child_died(self, slot: int, exitcode: int | None) -> list[int]:
        """Replace the dead child in ``slot``; returns the seqs of the jobs it still held."""
        with self._lock:
            old = self._children[slot]
            held = list(old.queued)
            old.queued.clear()
            for seq in held:
                self._by_seq.pop(seq, None)
            old.close()
            if old.retiring:  # shrunk away: not replaced
                log.info("pool child %s retired (pool_shrink)", old.pid)
            elif not self._stopping:
                if old.signalled:
                    log.info(
                        "pool child %s stopped by signal %s; starting a new one",
                        old.pid,
                        -exitcode if exitcode and exitcode < 0 else exitcode,
                    )
                elif old.left == 0 and exitcode == 0:
                    log.info(
                        "pool child %s did its %s tasks (--max-tasks-per-child); forking a new one",
                        old.pid,
                        self.max_tasks_per_child,
                    )
                else:
                    log.warning(
                        "pool child %s exited with %s; starting a new one", old.pid, exitcode
                    )
                self._children[slot] = self._fork(slot)
        return held

    def grow(self, n: int) -> None:
        """Fork ``n`` more children (new slots; a retired child's slot is never reused)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        with self._lock:
            for _ in range(n):
                self._children.append(self._fork(len(self._children)))
            self.concurrency += n

    def shrink(self, n: int) -> None:
        """Retire ``n`` children, idle ones first: each finishes the jobs already in its pipe,
        takes no new one and exits (its slot is not refilled)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if self.concurrency - n < 1:
            raise ValueError(f"cannot shrink the pool below one slot (it has {self.concurrency})")
        live = [c for c in self._children if not c.dead and not c.retiring]
        for child in sorted(live, key=lambda c: len(c.queued))[:n]:
            child.retiring = True
            with contextlib.suppress(OSError, ValueError):
                child.send([None])
        self.concurrency -= n

    def take_unstarted(self) -> list[Job]:
        """Children skip (and report) every job dispatched so far that has not started."""
        self._skip.value = self._last_seq
        return []

    def hold(self) -> None:
        """Start no more of the jobs dispatched so far (a shared-memory write: signal-safe)."""
        self._skip.value = self._last_seq

    def processes(self) -> list[int]:
        return [c.pid for c in self._children if not c.dead]

    def writes(self) -> list[int]:
        """The jobs written to each live child (``stats``' ``pool.writes``, as Celery's)."""
        return [self.write_stats.get(c.slot, 0) for c in self._children if not c.dead]

    def stop(self, timeout: float = 10.0) -> None:
        """Ask children to exit once their pipes are empty, wait, terminate stragglers."""
        self._stopping = True
        for c in self._children:
            with contextlib.suppress(OSError, ValueError):
                c.send([None])
        for c in self._children:
            c.proc.join(timeout)
        self.terminate()

    def terminate(self) -> None:
        self._stopping = True
        if self._loop is not None:
            self.bind_loop(None)
        for c in self._children:
            if c.proc.is_alive():
                c.proc.terminate()
        for c in self._children:
            c.proc.join(2.0)
            if c.proc.is_alive():
                c.proc.kill()
                c.proc.join(2.0)
        for c in self._children:
            c.close()
