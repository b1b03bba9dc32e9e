"""Benchmark tasks for a real Celery 5.7 worker (the same names as worker_tasks_amqptool.py).

Configured from the environment: ``AMQP_URL`` (broker), ``BENCH_QUEUE`` (default queue),
``BENCH_PREFETCH`` (prefetch multiplier).
"""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery(
    "bench",
    broker=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672//"),
    backend="rpc://",
)
app.conf.update(
    task_default_queue=os.environ.get("BENCH_QUEUE", "celery"),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "4")),
    result_expires=3600,
)


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    return None


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="bench.stamp")
def stamp() -> float:
    return time.time()
