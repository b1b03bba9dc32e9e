"""The Pool protocol and its reports: what the broker thread and a pool say to each other.

A pool takes :class:`~worker.pool.execute.Job` objects from the broker thread (:meth:`Pool.apply`,
only while :meth:`Pool.can_accept`) and reports back through ``notify(reports)``, a thread-safe
callable given to :meth:`Pool.start`. A report is one of these :data:`Report` types, in order
per job (the broker thread handles each kind exhaustively: ``match`` + ``assert_never``):

:class:`Started`
    the job began (unless ``apply`` returned the pid, which means "started now");
:class:`Skipped`
    the job was not run: ``precheck`` said ``"revoked"``/``"expired"`` just before it started,
    or it was given back ``"unstarted"`` (shutdown);
:class:`Publish` / :class:`Event`
    a running task's ``update_state``/``retry``/``send_event``;
:class:`Done`
    the job finished, with its :class:`~worker.pool.execute.Outcome`;
:class:`Died`
    a prefork child exited; the broker thread calls :meth:`Pool.child_died`, which returns
    the jobs that child still had (started ones are lost, the others can run elsewhere).

Bookkeeping (which slots are busy) belongs to the broker thread: it calls :meth:`Pool.job_done`
for every finished job. Pools: ``threads`` (N threads), ``solo`` (one thread) and ``prefork``
(:mod:`worker.pool.prefork`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from amqptool.codec.envelope import Envelope
from worker.pool.execute import Job, Outcome

__all__ = [
    "Died",
    "Done",
    "Event",
    "Notify",
    "Pool",
    "Precheck",
    "Publish",
    "Report",
    "SkipReason",
    "Skipped",
    "Started",
]

SkipReason = Literal["revoked", "expired", "unstarted"]


# Reports cross the prefork pipes: each pickles as its constructor call (a slotted dataclass
# otherwise pickles through ``dataclasses.fields()``, several times slower per report).


@dataclass(frozen=True, slots=True)
class Started:
    seq: int
    pid: int

    def __reduce__(self) -> tuple[Any, ...]:
        return (Started, (self.seq, self.pid))


@dataclass(frozen=True, slots=True)
class Skipped:
    seq: int
    reason: SkipReason

    def __reduce__(self) -> tuple[Any, ...]:
        return (Skipped, (self.seq, self.reason))


@dataclass(frozen=True, slots=True)
class Publish:
    seq: int
    envelope: Envelope

    def __reduce__(self) -> tuple[Any, ...]:
        return (Publish, (self.seq, self.envelope))


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    event_type: str
    fields: dict[str, Any]

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event, (self.seq, self.event_type, self.fields))


@dataclass(frozen=True, slots=True)
class Done:
    seq: int
    outcome: Outcome

    def __reduce__(self) -> tuple[Any, ...]:
        return (Done, (self.seq, self.outcome))


@dataclass(frozen=True, slots=True)
class Died:
    slot: int
    exitcode: int | None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Died, (self.slot, self.exitcode))


Report = Started | Skipped | Publish | Event | Done | Died

Notify = Callable[[list[Report]], None]
Precheck = Callable[[Job], SkipReason | None]


class Pool(Protocol):
    name: str
    implementation: str
    concurrency: int
    handles_soft_limits: bool  # True: the pool raises SoftTimeLimitExceeded by itself

    def start(self, notify: Notify, precheck: Precheck | None = None) -> None: ...

    def can_accept(self) -> bool: ...

    def apply(self, job: Job) -> int | None: ...

    def flush(self) -> None: ...

    def job_done(self, seq: int) -> None: ...

    def child_died(self, slot: int, exitcode: int | None) -> list[int]: ...

    def rebalance(self, now: float) -> tuple[list[int], float | None]:
        """Jobs taken back from behind a long one (to run elsewhere), and when to look again."""
        ...

    def take_back_waiting(self) -> list[int]:
        """Jobs handed over but not started, taken back (to be checked again)."""
        ...

    def take_unstarted(self) -> list[Job]: ...

    def hold(self) -> None: ...

    def kill_job(self, seq: int, signum: int) -> bool: ...

    def raise_in_job(self, seq: int, exc_type: type[BaseException]) -> bool: ...

    def grow(self, n: int) -> None: ...

    def shrink(self, n: int) -> None: ...

    def processes(self) -> list[int]: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def terminate(self) -> None: ...
