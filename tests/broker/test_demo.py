"""`make demo` without a terminal: a worker, a stream of tasks, the event stream and a summary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_demo_without_a_terminal_prints_events_and_a_summary_and_exits(
    cli_env: dict[str, str],
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool.demo"],
        cwd=ROOT,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "task-succeeded" in out and "task-failed" in out and "task-retried" in out
    summary = [line for line in out.splitlines() if line.startswith("summary:")]
    assert summary[0].startswith("summary: 32 tasks sent; final states:")
    assert "SUCCESS" in summary[0] and "FAILURE" in summary[0]
    assert "guest:guest" not in proc.stdout + proc.stderr
