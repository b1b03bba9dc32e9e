"""Benchmark tasks for our worker (the same names as bench/worker_tasks_celery.py)."""

from __future__ import annotations

import time

from worker import task


@task(name="bench.noop", ignore_result=True)
def noop() -> None:
    return None


@task(name="bench.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="bench.stamp")
def stamp() -> float:
    return time.time()
