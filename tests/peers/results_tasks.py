"""Our worker's copy of tests/peers/results_celery.py (same names, same behaviour)."""

from __future__ import annotations

import time
from typing import Any

from tests.peers.results_common import errback_key, wait_for_key
from worker import Task, task


@task(name="res.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="res.mul")
def mul(x: int, y: int) -> int:
    return x * y


@task(name="res.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@task(name="res.fail")
def fail(message: str = "bad thing") -> None:
    raise ValueError(message)


@task(bind=True, name="res.progress")
def progress(self: Task, key: str) -> str:
    self.update_state(state="PROGRESS", meta={"done": 50})
    wait_for_key(key)
    return "done"


@task(bind=True, name="res.spawn")
def spawn(self: Task, x: int) -> str:
    return str(add.delay(x, x).id)


@task(name="res.errback_old")
def errback_old(task_id: str) -> str:
    return f"errback:{task_id}"


@task(name="res.errback_new")
def errback_new(request: Any, exc: BaseException, traceback: Any) -> None:
    errback_key(request.id, exc)


@task(name="res.tag")
def tag(x: int) -> list[Any]:
    time.sleep(0.1)
    return [x, "ours"]


@task(name="res.tagsum")
def tagsum(items: list[list[Any]]) -> dict[str, Any]:
    return {"sum": sum(i[0] for i in items), "by": sorted({i[1] for i in items}), "body": "ours"}
