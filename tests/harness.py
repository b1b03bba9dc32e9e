"""Test harness: a real RabbitMQ for every test, isolated per session (and per test on request).

Each pytest session gets its own vhost (created with rabbitmqctl, deleted at the end), so tests
may use Celery's default names (``celery``, ``celeryev``, ``celery.pidbox``) without meeting
another run's traffic. Tests that need a pristine vhost use the ``fresh_vhost_url`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def ensure_broker() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ensure_broker.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError("no RabbitMQ broker for the tests: " + proc.stderr.strip())


def rabbitmqctl(*args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def create_vhost(prefix: str = "amqptool-test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name, check=False)


def url_for(vhost: str) -> str:
    host = os.environ.get("AMQPTOOL_TEST_HOST", "127.0.0.1")
    return f"amqp://guest:guest@{host}:5672/{vhost}"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
