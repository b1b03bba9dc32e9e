"""What runs inside a prefork child: the job loop, its report sink, the fork hygiene.

Split from :mod:`worker.pool.prefork` (the parent side: forking, dispatch, reading reports).
A child reads lists of jobs from its pipe (frames of :mod:`worker.pool.frames`), skips what
the parent took back, reports ``Started``/``Done``/``Skipped`` and the task's publishes and
events on its report pipe, and dies with its parent (:mod:`worker.pool.orphans`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.util as mp_util
import os
import select
import signal
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import FAILURE
from amqptool.codec.wire import prepare
from worker.policy.time_limits import arm_soft_alarm, disarm_soft_alarm, install_soft_alarm
from worker.pool.base import (
    Done,
    Event,
    Publish,
    Report,
    Skipped,
    Started,
)
from worker.pool.execute import Job, Outcome, execute
from worker.pool.frames import FrameReader, write_frame
from worker.pool.orphans import die_with_parent
from worker.task.define import Task

__all__ = [
    "CLAIMED",
    "TAKEN",
    "PipeSink",
    "child_main",
    "close_parent_ends",
    "serve_jobs",
    "without_after_fork_hooks",
]

CLAIMED, TAKEN = 0, 1  # the slots of a child's shared ``claims`` array (see serve_jobs)

log = logging.getLogger("worker.pool")


class PipeSink:
    __slots__ = ("out", "seq")

    def __init__(self, out: int) -> None:
        self.out = out  # the report pipe's write end
        self.seq = 0

    def publish(self, env: Envelope) -> None:
        write_frame(self.out, [Publish(self.seq, env)])

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        write_frame(self.out, [Event(self.seq, event_type, fields)])


def close_parent_ends(ends: Sequence[int]) -> None:
    """In a new child: close the pool's pipe ends it inherited by forking (its own job pipe's
    write end, its siblings' ends, the pool's wake-up pipe). Were they left open, the child
    would hold its own job pipe open and never see EOF when the parent dies (SIGKILL, OOM):
    it would live on as an orphan."""
    for end in ends:
        if end >= 0:
            with contextlib.suppress(OSError):
                os.close(end)


@contextlib.contextmanager
def without_after_fork_hooks() -> Iterator[None]:
    """Fork a pool child that runs none of the parent's multiprocessing after-fork hooks.

    Libraries in the parent (kombu, Celery, a user's task module) register hooks that tidy
    their connections in a child; some send AMQP frames on the socket the child inherited,
    which is still the parent's live connection, so the broker drops it. A pool child never
    uses those connections: it starts with an empty hook registry instead.
    """
    # multiprocessing has no public way to skip the hooks: swap its private registry.
    registry = mp_util._afterfork_registry  # type: ignore[attr-defined]  # private, see above
    mp_util._afterfork_registry = weakref.WeakValueDictionary()  # type: ignore[attr-defined]  # private
    try:
        yield
    finally:
        mp_util._afterfork_registry = registry  # type: ignore[attr-defined]  # restore it


def child_main(
    jobs: int,
    reports: int,
    tasks: Mapping[str, Task],
    skip: Any,
    current: Any,
    claims: Any,
    parent_ends: Sequence[int] = (),
    parent: int = 0,
) -> None:
    if parent:  # first of all: a child never outlives its worker (kill -9, OOM)
        die_with_parent(parent)
    close_parent_ends(parent_ends)
    # A broken report pipe means the parent is gone: nobody to report to, nothing to run.
    with contextlib.suppress(BrokenPipeError):
        serve_jobs(jobs, reports, tasks, skip, current, claims)


def serve_jobs(
    jobs: int,
    reports: int,
    tasks: Mapping[str, Task],
    skip: Any,
    current: Any,
    claims: Any,
) -> None:
    """Run the jobs read from the ``jobs`` pipe (blocking fd) until a stop marker or EOF.

    Per job: ``Started`` is written before it runs (with the previous job's ``Done`` when the
    next job was already waiting: one write, one wake-up of the parent for both); a child with
    nothing queued sends its last ``Done`` before it blocks for more.

    ``claims`` (shared with the parent, under its lock): ``[CLAIMED]`` the position in this
    pipe of the last job this child took (1 for the first job read, 2 for the next, ...),
    ``[TAKEN]`` the last position the parent took back (:meth:`PreforkPool.rebalance`). A job
    at or below ``TAKEN`` is passed over without a word: the parent runs it elsewhere. Checked
    and claimed under the lock, so a job is either taken back or run here, never both."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    install_soft_alarm()
    sink = PipeSink(reports)
    pid = os.getpid()
    reader = FrameReader(jobs)
    waiting = [jobs]
    out: list[Report] = []  # reports sent together with the next job's "started"
    batch: deque[Job | None] = deque()  # one pipe message carries every job dispatched at once
    position = 0  # of the job in hand, in this pipe (the parent counts the same way)
    lock = claims.get_lock()
    while True:
        if not batch:
            if reader.pending():
                batch.extend(reader.frames())
            else:
                if out and not select.select(waiting, [], [], 0)[0]:
                    write_frame(reports, out)
                    out = []
                batch.extend(reader.read())
                if reader.eof:
                    break
            if not batch:
                continue
        job = batch.popleft()
        if job is None:
            break
        position += 1
        with lock:
            taken = position <= claims[TAKEN]
            if not taken:
                claims[CLAIMED] = position
        if taken:
            continue
        if job.seq <= skip.value:
            out.append(Skipped(job.seq, "unstarted"))
            continue
        out.append(Started(job.seq, pid))
        write_frame(reports, out)
        out = []
        sink.seq = job.seq
        current.value = job.seq  # the parent kills this process only while this is its job
        soft = job.soft_limit
        try:
            if soft:
                arm_soft_alarm(soft)
            outcome = execute(job, tasks, sink)
            if soft:
                disarm_soft_alarm()
        except Exception:  # execute() handles task errors; this is a bug of ours
            # (or the soft-limit alarm went off just after the task returned)
            disarm_soft_alarm()
            log.exception("pool child: executing job %s failed", job.seq)
            outcome = Outcome(job.seq, FAILURE)
        current.value = 0
        if outcome.result is not None:  # its properties encoded here, not in the parent
            outcome.result = prepare(outcome.result)
        out.append(Done(job.seq, outcome))
    if out:
        write_frame(reports, out)
