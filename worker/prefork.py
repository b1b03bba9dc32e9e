"""The prefork pool: one child process per slot, forked (children inherit the task modules).

Each child has two pipes: jobs in, reports out. The broker thread sends a job only to an idle
child, so "sent" means "started" (``apply`` returns the child's pid). A reader thread in the
parent waits on every child's report pipe and process sentinel and forwards what it reads to
``notify``. When a child dies, the reader reports ``("died", slot, exitcode)``; the broker
thread calls :meth:`PreforkPool.child_died`, which forks a replacement and returns the job the
child was running (if any), so the worker can fail it with ``WorkerLostError`` or requeue it.

Children ignore SIGINT (a Ctrl-C in a terminal reaches the whole process group; the parent
decides about shutdown) and keep the default SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection as mpc
import os
import signal
import threading
from collections.abc import Mapping
from typing import Any

from amqptool.codec.envelope import Envelope
from worker.execute import Job, execute
from worker.pools import Notify
from worker.tasks import Task

__all__ = ["PreforkPool"]

log = logging.getLogger("worker.pool")
_ctx = multiprocessing.get_context("fork")


class _PipeSink:
    __slots__ = ("out", "seq")

    def __init__(self, out: mpc.Connection) -> None:
        self.out = out
        self.seq = 0

    def publish(self, env: Envelope) -> None:
        self.out.send(("publish", self.seq, env))

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        self.out.send(("event", self.seq, (event_type, fields)))


def _child_main(jobs: mpc.Connection, reports: mpc.Connection, tasks: Mapping[str, Task]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sink = _PipeSink(reports)
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        sink.seq = job.seq
        outcome = execute(job, tasks, sink)
        try:
            reports.send(("done", job.seq, outcome))
        except Exception as exc:  # an outcome that does not pickle must not kill the child
            log.error("pool child: cannot report task %s: %r", job.message.id, exc)
            raise


class _Child:
    def __init__(self, slot: int, tasks: Mapping[str, Task]) -> None:
        self.slot = slot
        job_r, self.jobs = _ctx.Pipe(duplex=False)
        self.reports, rep_w = _ctx.Pipe(duplex=False)
        self.proc = _ctx.Process(
            target=_child_main,
            args=(job_r, rep_w, tasks),
            name=f"worker-pool-{slot + 1}",
            daemon=True,
        )
        self.proc.start()
        job_r.close()
        rep_w.close()
        self.busy: int | None = None
        self.dead = False

    @property
    def pid(self) -> int:
        return self.proc.pid or 0

    def close(self) -> None:
        for conn in (self.jobs, self.reports):
            with contextlib.suppress(OSError):
                conn.close()


class PreforkPool:
    """``concurrency`` forked children, each running one task at a time."""

    name = "prefork"
    implementation = "worker.prefork:PreforkPool"

    def __init__(self, tasks: Mapping[str, Task], concurrency: int) -> None:
        self.tasks = tasks
        self.concurrency = max(1, concurrency)
        self._children: list[_Child] = []
        self._by_seq: dict[int, _Child] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, notify: Notify) -> None:
        self._notify = notify
        with self._lock:
            self._children = [_Child(i, self.tasks) for i in range(self.concurrency)]
        self._reader = threading.Thread(target=self._read_loop, name="pool-reader", daemon=True)
        self._reader.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _read_loop(self) -> None:
        while not self._stopping:
            with self._lock:
                children = [c for c in self._children if not c.dead]
            waitables: list[Any] = [self._wake_r]
            by_obj: dict[Any, tuple[str, _Child]] = {}
            for c in children:
                waitables.append(c.reports)
                by_obj[c.reports] = ("reports", c)
                waitables.append(c.proc.sentinel)
                by_obj[c.proc.sentinel] = ("sentinel", c)
            try:
                ready = mpc.wait(waitables)
            except (OSError, ValueError):  # a pipe closed under us: only during shutdown
                if self._stopping:
                    return
                continue
            items: list[tuple[Any, ...]] = []
            died: list[_Child] = []
            for obj in ready:
                if obj == self._wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                    continue
                kind, child = by_obj[obj]
                if kind == "reports":
                    self._drain(child, items)
                elif not child.dead:
                    died.append(child)
            for child in died:
                self._drain(child, items)
                child.dead = True
                child.proc.join(0.5)
                items.append(("died", child.slot, child.proc.exitcode))
            if items:
                self._notify(items)

    @staticmethod
    def _drain(child: _Child, items: list[tuple[Any, ...]]) -> None:
        try:
            while child.reports.poll():
                items.append(child.reports.recv())
        except (EOFError, OSError):
            pass
        except Exception:  # a report that does not unpickle: the job is reported lost later
            log.exception("pool: unreadable report from child %s", child.pid)

    # ------------------------------------------------------------------ broker-thread side

    def can_accept(self) -> bool:
        return any(c.busy is None and not c.dead for c in self._children)

    def apply(self, job: Job) -> int | None:
        for child in self._children:
            if child.busy is None and not child.dead:
                child.busy = job.seq
                self._by_seq[job.seq] = child
                child.jobs.send(job)
                return child.pid
        raise RuntimeError("prefork pool: no idle child (apply without can_accept)")

    def job_done(self, seq: int) -> None:
        child = self._by_seq.pop(seq, None)
        if child is not None and child.busy == seq:
            child.busy = None

    def child_died(self, slot: int, exitcode: int | None) -> int | None:
        """Replace the dead child in ``slot``; returns the seq of the job it was running."""
        with self._lock:
            old = self._children[slot]
            lost = old.busy
            if lost is not None:
                self._by_seq.pop(lost, None)
            old.close()
            if not self._stopping:
                log.warning("pool child %s exited with %s; starting a new one", old.pid, exitcode)
                self._children[slot] = _Child(slot, self.tasks)
        self._wake()
        return lost

    def take_unstarted(self) -> list[Job]:
        return []

    def processes(self) -> list[int]:
        return [c.pid for c in self._children if not c.dead]

    def stop(self, timeout: float = 10.0) -> None:
        """Ask idle children to exit, wait for them, terminate stragglers."""
        self._stopping = True
        for c in self._children:
            with contextlib.suppress(OSError, ValueError):
                c.jobs.send(None)
        for c in self._children:
            c.proc.join(timeout)
        self.terminate()

    def terminate(self) -> None:
        self._stopping = True
        for c in self._children:
            if c.proc.is_alive():
                c.proc.terminate()
        for c in self._children:
            c.proc.join(2.0)
            if c.proc.is_alive():
                c.proc.kill()
                c.proc.join(2.0)
        self._wake()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2.0)
        for c in self._children:
            c.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
