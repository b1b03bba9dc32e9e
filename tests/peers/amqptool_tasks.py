"""Our worker's test tasks: the SAME names as tests/peers/celery_app.py, plus a few extras.

``peer.*`` behave exactly like the Celery peer's tasks, so one test can run against either
worker. ``extra.*`` exercise worker features (custom states, acks_late, lost workers...).
"""

from __future__ import annotations

import os
import time
from typing import Any

from worker import Task, task


@task(name="peer.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="peer.mul")
def mul(x: int, y: int) -> int:
    return x * y


@task(name="peer.echo")
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task(name="peer.fail")
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@task(name="peer.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(name="peer.noop", ignore_result=True)
def noop() -> None:
    return None


@task(bind=True, name="peer.flaky", max_retries=3, default_retry_delay=0.2)
def flaky(self: Task, fail_times: int = 2) -> int:
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("flaky"), countdown=0.2)
    return self.request.retries


# ---------------------------------------------------------------------------- extras


@task(bind=True, name="extra.progress", track_started=True)
def progress(self: Task, steps: int = 2, pause: float = 0.0) -> str:
    for done in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"done": done, "total": steps})
        time.sleep(pause)
    return "done"


@task(name="extra.slow_late", acks_late=True)
def slow_late(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(name="extra.die", acks_late=True)
def die(code: int = 3) -> None:
    os._exit(code)


@task(name="extra.die_requeue", acks_late=True, reject_on_worker_lost=True)
def die_requeue(marker: str) -> str:
    # Dies the first time (marker file absent), succeeds when redelivered.
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write("died once")
        os._exit(4)
    return "survived"


class Unpicklable(Exception):
    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.handle = handle

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this exception")


@task(name="extra.unserializable")
def unserializable() -> None:
    raise Unpicklable(object())


@task(name="extra.whoami", bind=True)
def whoami(self: Task) -> dict[str, Any]:
    r = self.request
    return {
        "id": r.id,
        "retries": r.retries,
        "hostname": r.hostname,
        "reply_to": r.reply_to,
        "correlation_id": r.correlation_id,
        "root_id": r.root_id,
        "parent_id": r.parent_id,
        "delivery_info": r.delivery_info,
    }


class Multiply(Task):
    """A class-based task with handlers."""

    name = "extra.Multiply"
    calls: list[str] = []

    def run(self, x: int, y: int) -> int:
        return x * y

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        Multiply.calls.append(f"success:{retval}")

    def after_return(self, status: str, *rest: Any) -> None:
        Multiply.calls.append(f"after:{status}")


COLLECTED: list[tuple[Any, ...]] = []


@task(name="extra.collect")
def collect(*args: Any) -> int:
    """Records its arguments in this process (link/errback targets for in-process workers)."""
    COLLECTED.append(args)
    return len(COLLECTED)


@task(name="extra.blob")
def blob(size: int) -> str:
    """A result of ``size`` characters (the publish drills' oversized result)."""
    return "x" * size
