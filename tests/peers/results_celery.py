"""A real Celery 5.7 app for the results/canvas parity suite; same task names as
tests/peers/results_tasks.py (our worker's copy).

Configured from the environment: ``AMQP_URL``, ``PEER_QUEUE``, ``PEER_RESULT_BACKEND``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

from tests.peers.results_common import errback_key, wait_for_key

app = Celery(
    "results_peer",
    broker=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672//"),
    backend=os.environ.get("PEER_RESULT_BACKEND", "rpc://"),
)
app.conf.update(
    task_default_queue=os.environ.get("PEER_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="res.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="res.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="res.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task(name="res.fail")
def fail(message: str = "bad thing") -> None:
    raise ValueError(message)


@app.task(bind=True, name="res.progress")
def progress(self: Any, key: str) -> str:
    self.update_state(state="PROGRESS", meta={"done": 50})
    wait_for_key(key)
    return "done"


@app.task(bind=True, name="res.spawn")
def spawn(self: Any, x: int) -> str:
    return str(add.delay(x, x).id)


@app.task(name="res.errback_old")
def errback_old(task_id: str) -> str:
    return f"errback:{task_id}"


@app.task(name="res.errback_new")
def errback_new(request: Any, exc: BaseException, traceback: Any) -> None:
    errback_key(request.id, exc)


@app.task(name="res.tag")
def tag(x: int) -> list[Any]:
    time.sleep(0.1)
    return [x, "celery"]


@app.task(name="res.tagsum")
def tagsum(items: list[list[Any]]) -> dict[str, Any]:
    return {"sum": sum(i[0] for i in items), "by": sorted({i[1] for i in items}), "body": "celery"}
