"""What the results test tasks of both workers share: a Redis flag to wait on, a Redis note."""

from __future__ import annotations

import time

REDIS_URL = "redis://127.0.0.1:6379/0"


def _client():  # type: ignore[no-untyped-def]  # redis is an optional extra
    import redis

    return redis.Redis.from_url(REDIS_URL)


def wait_for_key(key: str, timeout: float = 30.0) -> None:
    """Block until the test sets ``key`` (bounded)."""
    client = _client()
    deadline = time.monotonic() + timeout
    try:
        while not client.exists(key) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()


def errback_key(task_id: str, exc: BaseException) -> None:
    """Note which exception the errback saw for ``task_id``."""
    client = _client()
    try:
        client.set(f"res-errback-{task_id}", f"{type(exc).__name__}:{exc}", ex=300)
    finally:
        client.close()
