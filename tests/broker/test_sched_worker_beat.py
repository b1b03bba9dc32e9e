"""``-B``: the worker runs the periodic tasks, and a restart neither skips nor doubles a run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.harness import wait_until
from tests.worker_support import WorkerProcess

EVERY = 3.0


def _ticks(path: Path) -> list[float]:
    return [float(t) for t in path.read_text().split()] if path.exists() else []


def test_beat_runs_periodic_tasks_and_a_restart_neither_skips_nor_doubles(
    broker_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = tmp_path / "ticks"
    schedule = tmp_path / "beat.json"
    monkeypatch.setenv("SCHED_TICK_FILE", str(ticks))
    monkeypatch.setenv("SCHED_TICK_EVERY", str(EVERY))
    args = ("-A", "tests.peers.sched_tasks", "-P", "threads", "-B", "-s", str(schedule))
    with WorkerProcess(broker_url, *args) as first:
        queue = first.queue
        assert "beat:        on" in first.output()
        wait_until(lambda: len(_ticks(ticks)) == 1, timeout=EVERY + 5, message="a first run")
    last = _ticks(ticks)[-1]
    saved = json.loads(schedule.read_text())["entries"]["sched.tick"]
    assert saved["total_run_count"] == 1
    # restart a second after the run (well before the next one is due), so that counting from
    # the restart instead of from the last run would show
    wait_until(lambda: time.time() >= last + 1.0, timeout=EVERY, message="a second to pass")
    restarted = time.time()
    assert restarted < last + EVERY - 0.5
    with WorkerProcess(broker_url, *args, queue=queue):
        wait_until(lambda: len(_ticks(ticks)) == 2, timeout=EVERY + 5, message="the next run")
    next_run = _ticks(ticks)[1]
    # counted from the last run (at last + EVERY), not from the restart (a skip: at restarted +
    # EVERY or later), and not run again at once on restart (a double: before last + EVERY)
    assert last + EVERY - 0.1 <= next_run < restarted + EVERY - 0.3
