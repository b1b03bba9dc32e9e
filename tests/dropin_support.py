"""Helpers for the drop-in tests: the amqptool CLI as a user runs it, with a clean environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import ROOT, stop_process, wait_until

__all__ = ["PROJECT", "amqptool", "clean_env", "worker_running"]

PROJECT = ROOT / "tests" / "projects"  # the test Celery project and our own task modules


def clean_env(*paths: Path, url: str | None = None) -> dict[str, str]:
    """Only PATH, PYTHONPATH (``paths``, the test projects, the repo) and the broker URL."""
    env = {"PYTHONPATH": ":".join(map(str, [*paths, PROJECT, ROOT])), "PATH": "/usr/bin:/bin"}
    if url is not None:
        env["AMQP_URL"] = url
    return env


def amqptool(
    *argv: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amqptool", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )


@contextmanager
def worker_running(*argv: str, env: dict[str, str], cwd: Path) -> Iterator[Path]:
    """``amqptool worker ARGV`` until "ready."; yields its log file; SIGTERM and wait after."""
    log = cwd / f"worker-{len(list(cwd.glob('worker-*.log')))}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", "worker", *argv], stderr=out, env=env, cwd=cwd
        )
    try:
        wait_until(
            lambda: "ready." in log.read_text() or proc.poll() is not None, 60, message="ready"
        )
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        yield log
    finally:
        stop_process(proc, 30)
