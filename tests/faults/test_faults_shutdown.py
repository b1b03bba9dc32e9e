"""Warm shutdown under load, and slow tasks that outlast the AMQP heartbeat several times.

Warm shutdown: with every pool slot busy and prefetched tasks waiting, SIGTERM lets the running
tasks finish (their results go out), gives the waiting ones back to the queue, and exits 0;
a second worker then runs exactly the tasks left, so nothing is lost and nothing runs twice.

Slow consumers: a task running 3 x the heartbeat interval does not cost the worker its broker
connection (the broker thread keeps answering heartbeats while the pool works).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.fault_support import LiveMonitor, main_connections
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

SLOTS = 2
PREFETCH_MULTIPLIER = 4
TASKS = 24


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_sigterm_under_load_finishes_running_tasks_and_requeues_the_waiting_ones(
    broker_url: str, tmp_path: Path, pool: str
) -> None:
    queue = unique("relia-warm")
    runs_log = tmp_path / "runs.log"
    busy = DrillWorker(
        broker_url,
        queue,
        *("-P", pool, "-c", str(SLOTS), "-E", "-l", "INFO"),
        *("--prefetch-multiplier", str(PREFETCH_MULTIPLIER)),
        log_dir=tmp_path,
        exec_log=runs_log,
    )
    started = time.monotonic()
    with ResultTally(broker_url) as tally, LiveMonitor(broker_url) as monitor:
        ids = push_tasks(broker_url, queue, "relia.nap", [(1.0,)] * TASKS, reply_to=tally.queue)
        with workers(busy):

            def running() -> list[str]:
                return monitor.read(
                    lambda s: [u for u in ids if u in s.tasks and s.tasks[u].state == "STARTED"]
                )

            wait_until(lambda: len(running()) == SLOTS, 20, message="every pool slot busy")
            ready, _consumers = queue_depth(broker_url, queue)
            held = TASKS - ready - tally.succeeded(ids)  # running + prefetched, unacked
            assert held > SLOTS, "prefetched tasks should be waiting behind the busy slots"
            sigterm_at = time.time()
            busy.signal(signal.SIGTERM)
            assert busy.wait(30) == 0
        finished = set(runs_per_task(runs_log))
        wait_until(
            lambda: all(monitor.task_state(i) == "SUCCESS" for i in finished),
            10,
            message="the monitor to see the finished tasks",
        )
        started_at = monitor.read(lambda s: {i: s.tasks[i].started for i in finished})
        left, consumers = queue_depth(broker_url, queue)
        # The running tasks finished and reported; none started after the signal; everything
        # else is back in the queue, in full.
        assert len(finished) >= SLOTS
        assert all(tally.succeeded([i]) for i in finished)
        assert None not in started_at.values()
        late = {i: t - sigterm_at for i, t in started_at.items() if t and t > sigterm_at}
        assert not late, f"tasks started after SIGTERM (seconds after): {late}"
        assert (left, consumers) == (TASKS - len(finished), 0)
        assert "Warm shutdown" in busy.output() and "Traceback" not in busy.output()

        with workers(
            DrillWorker(
                broker_url, queue, "-P", "threads", "-c", "8", log_dir=tmp_path, exec_log=runs_log
            )
        ):
            tally.wait_all(ids, timeout=30)
        runs = runs_per_task(runs_log)
    assert all(runs[i] == 1 for i in ids), "a warm shutdown must not run a task twice"
    assert tally.duplicates() == 0
    record_figures(
        f"warm_shutdown_{pool}",
        {
            "tasks_pushed": TASKS,
            "warm_shutdowns": 1,
            "restarts": 1,
            "held_at_sigterm": held,
            "finished_before_exit": len(finished),
            "tasks_lost": len(tally.missing(ids)),
            "duplicate_runs": sum(n - 1 for n in runs.values() if n > 1),
            "duplicate_results": tally.duplicates(),
            "seconds": elapsed_since(started),
        },
    )


HEARTBEAT = 2


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_task_three_heartbeats_long_keeps_the_worker_connection(
    broker_url: str, broker_vhost: str, tmp_path: Path, pool: str
) -> None:
    queue = unique("relia-slow")
    url = f"{broker_url}?heartbeat={HEARTBEAT}"
    slow = DrillWorker(url, queue, "-P", pool, "-c", "1", "-l", "INFO", log_dir=tmp_path)
    with ResultTally(broker_url) as tally, workers(slow):

        def connection_pid() -> str | None:
            found = [
                p for p, name in main_connections(broker_vhost) if name == slow.connection_name
            ]
            return found[0] if found else None

        before = wait_until(connection_pid, 10, message="the worker's broker connection")
        (long_task,) = push_tasks(
            broker_url, queue, "relia.nap", [(3.0 * HEARTBEAT,)], reply_to=tally.queue
        )
        tally.wait_all([long_task], timeout=30)
        # The same connection is still there, and it still carries work.
        assert connection_pid() == before
        (after,) = push_tasks(broker_url, queue, "relia.mark", [(1,)], reply_to=tally.queue)
        tally.wait_all([after], timeout=10)
        assert connection_pid() == before
    output = slow.output()
    assert "Connection to broker lost" not in output and "Traceback" not in output
