"""Size limits against a broker with a small ``max_message_size`` (the second node, set at run
time, restored after): an oversized task fails at the caller, an oversized result becomes a
FAILURE result naming the sizes, and no neighbouring task or result is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amqptool.client import Client
from amqptool.errors import MessageTooLargeError
from tests.brokers import SecondBroker
from tests.load import record_figures
from tests.worker_support import connect, worker_and_client

LIMIT = 200_000
DEFAULT_LIMIT = 134_217_728  # RabbitMQ 3.x's default


@pytest.fixture
def small_limit(broker_b: SecondBroker) -> Iterator[int]:
    broker_b.ctl("eval", f"application:set_env(rabbit, max_message_size, {LIMIT}).")
    try:
        yield LIMIT
    finally:
        broker_b.ctl("eval", f"application:set_env(rabbit, max_message_size, {DEFAULT_LIMIT}).")


def test_oversized_task_is_an_error_at_the_caller_and_its_neighbours_go_through(
    small_limit: int, b_vhost_url: str
) -> None:
    queue = "size-tasks"
    with Client(url=b_vhost_url) as client:
        before = client.send_many([("peer.echo", [i], {}, {"queue": queue}) for i in range(50)])
        with pytest.raises(MessageTooLargeError) as err:
            client.send_task("peer.echo", ["y" * (LIMIT + 1000)], queue=queue)
        assert f"the broker accepts {small_limit}" in err.value.message
        assert err.value.size > small_limit
        # The client learned the limit from the broker: the next oversized one is refused
        # before anything is sent.
        with pytest.raises(MessageTooLargeError):
            client.send_task("peer.echo", ["y" * (LIMIT + 1000)], queue=queue)
        after = client.send_many([("peer.echo", [i], {}, {"queue": queue}) for i in range(50)])
    with connect(b_vhost_url) as conn:
        depth = conn.channel().queue_declare(queue, passive=True).message_count
    assert len(before) + len(after) == 100 and depth == 100


def test_oversized_result_is_a_failure_naming_the_sizes_and_no_neighbour_is_lost(
    small_limit: int, b_vhost_url: str
) -> None:
    with worker_and_client(b_vhost_url, concurrency=4) as (_worker, client, queue):
        calls: list[tuple[str, list[int], dict[str, int], dict[str, str]]]
        calls = [("extra.blob", [100], {}, {"queue": queue}) for _ in range(100)]
        calls.insert(50, ("extra.blob", [LIMIT * 2], {}, {"queue": queue}))
        results = client.send_many(calls)
        states = [client.wait_for(r.id, timeout=60) for r in results]
    big = states[50]
    small = states[:50] + states[51:]
    assert big.status == "FAILURE"
    text = str(big.result)
    assert "result is " in text and f"bytes, the broker accepts {small_limit}" in text
    assert [s.status for s in small] == ["SUCCESS"] * 100
    assert all(s.result == "x" * 100 for s in small)
    record_figures(
        "publish_size_limits",
        {
            "tasks_pushed": 202,
            "oversized_results": 1,
            "oversized_tasks": 2,
            "neighbour_results_lost": 0,
            "tasks_lost": 0,
        },
    )
