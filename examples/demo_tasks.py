"""Example tasks for ``make demo``: some succeed, some fail, some retry, some are slow.

Run them with ``amqptool worker -A examples.demo_tasks -E``.
"""

from __future__ import annotations

import random
import time
from typing import Any

from worker import task


@task(name="demo.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="demo.mul")
def mul(x: int, y: int) -> int:
    return x * y


@task(name="demo.fail")
def fail(message: str = "demo failure") -> None:
    raise ValueError(message)


@task(name="demo.slow")
def slow(seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return seconds


@task(bind=True, name="demo.flaky", max_retries=3, default_retry_delay=0.5)
def flaky(self: Any, fail_times: int = 2) -> int:
    """Fails ``fail_times`` times, then succeeds: shows RETRY in the monitor."""
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("flaky, try again"), countdown=0.5)
    return int(self.request.retries)


@task(bind=True, name="demo.progress", track_started=True)
def progress(self: Any, steps: int = 3) -> str:
    for step in range(steps):
        self.update_state(state="PROGRESS", meta={"done": step, "total": steps})
        time.sleep(random.uniform(0.05, 0.2))
    return "done"
