"""Tasks for the scheduling tests (tests/broker/test_sched_worker_*): ETA, retries, limits, beat."""

from __future__ import annotations

import os
import time

from worker import SoftTimeLimitExceeded, Task, periodic_task, task


@task(name="sched.stamp")
def stamp(tag: str = "") -> float:
    """When it started (wall clock), to compare with an ETA."""
    return time.time()


@task(name="sched.pid")
def pid() -> int:
    return os.getpid()


@task(bind=True, name="sched.flaky", max_retries=3)
def flaky(self: Task, fail_times: int = 2) -> int:
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("flaky"), countdown=0.2)
    return self.request.retries


@task(bind=True, name="sched.no_more", max_retries=0)
def no_more(self: Task) -> None:
    raise self.retry(countdown=0)


@task(
    name="sched.autoretry",
    autoretry_for=(ValueError,),
    max_retries=1,
    retry_backoff=True,
    retry_jitter=False,
)
def autoretry() -> None:
    raise ValueError("always")


def _spin(seconds: float) -> None:
    """Busy in Python code (short sleeps): an asynchronous exception lands within ~10 ms."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


@task(name="sched.soft_caught")
def soft_caught(seconds: float) -> str:
    try:
        _spin(seconds)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "finished"


@task(name="sched.spin")
def spin(seconds: float) -> str:
    _spin(seconds)
    return "finished"


@task(name="sched.block")
def block(seconds: float) -> str:
    time.sleep(seconds)  # one long C call
    return "finished"


@task(name="sched.limited", rate_limit="8/s")
def limited() -> float:
    return time.time()


@periodic_task(run_every=float(os.environ.get("SCHED_TICK_EVERY", "3")))
@task(name="sched.tick", ignore_result=True)
def tick() -> None:
    """Appends when it ran to $SCHED_TICK_FILE (the beat test reads it)."""
    path = os.environ.get("SCHED_TICK_FILE")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{time.time()}\n")
