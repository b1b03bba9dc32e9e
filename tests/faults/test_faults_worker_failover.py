"""A worker given two brokers moves to the second when the first one's app stops."""

from __future__ import annotations

import pytest

from tests.brokers import SecondBroker
from tests.fault_support import FailoverDrill
from tests.harness import unique
from tests.load import record_figures
from tests.worker_support import Collector, WorkerProcess, publish_task

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_a_worker_whose_first_broker_stops_moves_to_the_second(
    broker_b: SecondBroker, broker_vhost: str
) -> None:
    drill = FailoverDrill(broker_b, broker_vhost)
    queue = unique("failover")
    with WorkerProcess(drill.url(), "-P", "threads", "-c", "2", queue=queue) as worker:
        connection = f"amqptool-worker {worker.nodename}"
        drill.wait_on_second_node(connection)
        drill.wait_consuming(drill.b_url, queue)
        with Collector(drill.b_url) as replies:
            sent = publish_task(drill.b_url, queue, "peer.add", 2, 3, reply_to=replies.name)
            assert replies.wait_result(sent.id, "SUCCESS")["result"] == 5

        with broker_b.app_stopped():
            drill.wait_on_main(connection)
            drill.wait_consuming(drill.main_url, queue)
            with Collector(drill.main_url) as replies:
                sent = publish_task(drill.main_url, queue, "peer.add", 4, 5, reply_to=replies.name)
                assert replies.wait_result(sent.id, "SUCCESS")["result"] == 9
            assert worker.proc is not None and worker.proc.poll() is None
        assert "Traceback" not in worker.output()
    record_figures("worker_failover", {"failovers": 1, "tasks_pushed": 2, "tasks_lost": 0})
