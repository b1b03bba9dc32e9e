"""A real Celery 5.7 app, the test-only peer. Task names match tests/peers/amqptool_tasks.py.

Configured from the environment: ``AMQP_URL`` (broker), ``PEER_QUEUE`` (default queue).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

app = Celery(
    "peer",
    broker=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672//"),
    backend="rpc://",
)
app.conf.update(
    task_default_queue=os.environ.get("PEER_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=4,
    result_expires=3600,
)


@app.task(name="peer.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="peer.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="peer.echo")
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="peer.fail")
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@app.task(name="peer.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="peer.noop", ignore_result=True)
def noop() -> None:
    return None


@app.task(bind=True, name="peer.flaky", max_retries=3, default_retry_delay=0.2)
def flaky(self: Any, fail_times: int = 2) -> int:
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("flaky"), countdown=0.2)
    return self.request.retries
