"""consumer_timeout: an ``acks_late`` task that outlives the broker's delivery-ack timeout runs
once, its result is delivered, and the broker's close reason is in the worker's log.

RabbitMQ 3.10 has no per-queue consumer timeout, so this drill runs on a node of its own
(``amqptool-g@localhost``, amqp 5711, dist 25711; never the shared broker on 5672) whose
``consumer_timeout`` is set to 5 s with ``rabbitmqctl eval`` (and the channel tick that checks
it to 1 s, so the timeout fires on time rather than up to a minute late).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import SecondBroker, node_in_use
from tests.harness import unique, wait_until
from tests.load import DrillWorker, ResultTally, push_tasks, record_figures, runs_per_task

CONSUMER_TIMEOUT_MS = 5000
GUARD_NODE = SecondBroker(
    Path("/tmp/amqptool-broker-g"),
    nodename="amqptool-g@localhost",
    amqp_port=5711,
    amqps_port=5712,
    dist_port=25711,
)


@pytest.fixture(scope="module")
def guard_node() -> Iterator[SecondBroker]:
    with node_in_use(GUARD_NODE) as node:
        yield node


@pytest.fixture
def short_timeout_url(guard_node: SecondBroker) -> Iterator[str]:
    """A vhost on the guard node, whose consumer_timeout is 5 s for the test."""
    with guard_node.exclusive_use() as node:
        node.ctl("eval", f"application:set_env(rabbit, consumer_timeout, {CONSUMER_TIMEOUT_MS}).")
        node.ctl("eval", "application:set_env(rabbit, channel_tick_interval, 1000).")
        vhost = node.add_vhost(unique("amqptool-g"))
        try:
            yield node.url(vhost)
        finally:
            node.delete_vhost(vhost)
            node.ctl("eval", "application:unset_env(rabbit, consumer_timeout).")
            node.ctl("eval", "application:unset_env(rabbit, channel_tick_interval).")


def _messages_left(node: SecondBroker, url: str) -> int:
    vhost = url.rsplit("/", 1)[1]
    out = node.ctl("list_queues", "-p", vhost, "name", "messages", "--no-table-headers")
    return sum(int(line.split("\t")[1]) for line in out.splitlines() if "\t" in line)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_task_longer_than_consumer_timeout_runs_once_and_its_result_arrives(
    pool: str, guard_node: SecondBroker, short_timeout_url: str, tmp_path: Path
) -> None:
    url, queue, exec_log = short_timeout_url, unique("ctq"), tmp_path / "runs.log"
    seconds = 9.0  # > 5 s timeout (+1 s tick): one close, one redelivery while it still runs
    with ResultTally(url) as tally:
        ids = push_tasks(url, queue, "relia.nap", [(seconds,)], reply_to=tally.queue)
        ids += push_tasks(url, queue, "relia.mark", [(n,) for n in range(20)], reply_to=tally.queue)
        worker = DrillWorker(url, queue, "-P", pool, "-c", "2", log_dir=tmp_path, exec_log=exec_log)
        started = time.monotonic()
        with worker:
            tally.wait_all(ids, 60)
            took = time.monotonic() - started
            wait_until(
                lambda: _messages_left(guard_node, url) == 0,
                30,
                message="the redelivered copy to be acked",
            )
            out = worker.output()
    runs = runs_per_task(exec_log)
    assert runs[ids[0]] == 1, out[-3000:]
    assert all(runs[i] == 1 for i in ids)
    assert tally.duplicates() == 0
    assert "delivery acknowledgement" in out and "timed out" in out, out[-3000:]
    assert "406" in out
    assert "redelivered while it still runs here" in out
    assert "the first run's outcome stands" in out
    record_figures(
        f"consumer_timeout_{pool}",
        {
            "tasks_pushed": len(ids),
            "consumer_timeout_s": CONSUMER_TIMEOUT_MS / 1000,
            "long_task_s": seconds,
            "connections_closed": out.count("delivery acknowledgement on channel"),
            "duplicate_runs": sum(max(0, n - 1) for n in runs.values()),
            "duplicate_results": tally.duplicates(),
            "tasks_lost": len(tally.missing(ids)),
            "seconds": round(took, 1),
        },
    )
