"""The Pool protocol and its reports: what the broker thread and a pool say to each other.

A pool takes :class:`~worker.pool.execute.Job` objects from the broker thread (:meth:`Pool.apply`,
only while :meth:`Pool.can_accept`) and reports back through ``notify(items)``, a thread-safe
callable given to :meth:`Pool.start`. Items are tuples, in order per job:

``("started", seq, pid)``
    the job began (unless ``apply`` returned the pid, which means "started now");
``("skipped", seq, reason)``
    the job was not run: ``precheck`` said ``"revoked"``/``"expired"`` just before it started;
``("publish", seq, Envelope)`` / ``("event", seq, (type, fields))``
    a running task's ``update_state``/``retry``/``send_event``;
``("done", seq, Outcome)``
    the job finished;
``("died", slot, exitcode)``
    a prefork child exited; the broker thread calls :meth:`Pool.child_died`, which returns
    the jobs that child still had (started ones are lost, the others can run elsewhere).

Bookkeeping (which slots are busy) belongs to the broker thread: it calls :meth:`Pool.job_done`
for every finished job. Pools: ``threads`` (N threads), ``solo`` (one thread) and ``prefork``
(:mod:`worker.pool.prefork`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from worker.pool.execute import Job

__all__ = ["Notify", "Pool", "Precheck"]

Notify = Callable[[list[tuple[Any, ...]]], None]
Precheck = Callable[[Job], str | None]


class Pool(Protocol):
    name: str
    implementation: str
    concurrency: int
    handles_soft_limits: bool  # True: the pool raises SoftTimeLimitExceeded by itself

    def start(self, notify: Notify, precheck: Precheck | None = None) -> None: ...

    def can_accept(self) -> bool: ...

    def apply(self, job: Job) -> int | None: ...

    def job_done(self, seq: int) -> None: ...

    def child_died(self, slot: int, exitcode: int | None) -> list[int]: ...

    def take_unstarted(self) -> list[Job]: ...

    def hold(self) -> None: ...

    def kill_job(self, seq: int, signum: int) -> bool: ...

    def raise_in_job(self, seq: int, exc_type: type[BaseException]) -> bool: ...

    def grow(self, n: int) -> None: ...

    def shrink(self, n: int) -> None: ...

    def processes(self) -> list[int]: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def terminate(self) -> None: ...
