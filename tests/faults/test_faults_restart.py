"""A broker restart mid-run (stop_app / start_app of the second node), with everyone attached.

A worker busy with acks_late tasks, the monitor (its feed folded into its state) and an open
shell all reconnect by themselves; the tasks that were queued or unacked when the broker went
away all complete; the monitor keeps what it knew before the restart.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers import SecondBroker
from tests.fault_support import LiveMonitor, ShellPipe
from tests.harness import unique, wait_until
from tests.load import (
    DrillWorker,
    ResultTally,
    elapsed_since,
    push_tasks,
    queue_depth,
    record_figures,
    runs_per_task,
    workers,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BEFORE = 60
AFTER = 20


@pytest.mark.timeout(180)
def test_worker_monitor_and_shell_ride_out_a_broker_restart(
    broker_b: SecondBroker, b_vhost_url: str, tmp_path: Path
) -> None:
    url = b_vhost_url
    queue = unique("relia-restart")
    shell_queue = unique("relia-shellq")
    runs_log = tmp_path / "runs.log"
    worker = DrillWorker(
        url, queue, "-P", "threads", "-c", "2", "-E", log_dir=tmp_path, exec_log=runs_log
    )
    started = time.monotonic()
    with (
        ResultTally(url) as tally,
        LiveMonitor(url) as monitor,
        ShellPipe(url, tmp_path) as shell,
        workers(worker),
    ):
        assert shell.run(f"queue.declare {shell_queue} no yes no no")["ok"] is True
        wait_until(
            lambda: monitor.read(lambda s: worker.nodename in s.workers),
            20,
            message="the monitor to see the worker",
        )
        ids = push_tasks(url, queue, "relia.nap", [(0.05,)] * BEFORE, reply_to=tally.queue)
        wait_until(lambda: tally.succeeded(ids) >= 10, 30, message="ten tasks done")

        known = monitor.read(lambda s: {u: t.state for u, t in s.tasks.items()})
        outstanding = BEFORE - tally.succeeded(ids)
        broker_b.stop_app()
        broker_b.start_app()

        tally.wait_all(ids, timeout=60)
        # ... and new work after the restart runs and is seen by the monitor.
        more = push_tasks(url, queue, "relia.nap", [(0.01,)] * AFTER, reply_to=tally.queue)
        tally.wait_all(more, timeout=30)
        wait_until(
            lambda: all(monitor.task_state(i) == "SUCCESS" for i in more),
            20,
            message="the monitor to see the new tasks succeed",
        )
        assert worker.alive and worker.starts == 1
        assert monitor.read(lambda s: s.workers[worker.nodename].is_online(time.time()))
        assert queue_depth(url, queue) == (0, 1)
        doc = shell.run(f"queue.declare {shell_queue} yes")  # passive: it survived, durable
        assert doc["ok"] is True, doc
        assert shell.run(f"queue.delete {shell_queue}")["ok"] is True
        assert shell.close() == 0
        runs = runs_per_task(runs_log)

    assert outstanding > 0, "the restart came too late to catch tasks in flight"
    # The worker: reconnected by itself, every task ran (some twice: unacked when cut off).
    assert "Connection to broker lost" in worker.output()
    assert "Traceback" not in worker.output()
    assert all(runs[i] >= 1 for i in ids + more)
    # The monitor: reconnected, kept its pre-restart state, the worker online again.
    assert monitor.feed.connects >= 2
    assert "disconnected" in monitor.states()
    kept = monitor.read(lambda s: {u: s.tasks[u].state for u in known if u in s.tasks})
    assert kept.keys() == known.keys()
    assert all(kept[u] in (known[u], "SUCCESS") for u in known)
    # The shell: said it lost the connection and reconnected, then went on.
    assert "connection lost" in shell.stderr() and "reconnected" in shell.stderr()
    assert "Traceback" not in shell.stderr()
    record_figures(
        "broker_restart",
        {
            "tasks_pushed": BEFORE + AFTER,
            "broker_restarts": 1,
            "in_flight_at_restart": outstanding,
            "tasks_lost": len(tally.missing(ids + more)),
            "duplicate_runs": sum(n - 1 for n in runs.values() if n > 1),
            "duplicate_results": tally.duplicates(),
            "seconds": elapsed_since(started),
        },
    )
