"""Parking far-off ETA tasks on the broker: naming and bucketing, and the real round trip."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from amqptool.codec import tasks
from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.times import utcnow
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from amqptool.transport.delayed import (
    MAX_BUCKET,
    bucket_for,
    delay_queue_arguments,
    delay_queue_name,
    park,
    park_envelope,
    plan_hops,
    was_parked,
)
from tests.harness import rabbitmqctl, wait_until
from worker.policy.eta import decide

# ---------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("delay", "bucket"),
    [
        (0.0, None),
        (0.999, None),
        (1.0, 1),
        (1.999, 1),
        (3.0, 2),
        (3.5, 2),
        (600.5, 512),
        (1024.0, 1024),
        (7 * 86400.0, 524288),
        (400 * 86400.0, MAX_BUCKET),
        (float("inf"), MAX_BUCKET),
        (float("nan"), None),
        (-5.0, None),
    ],
)
def test_a_delay_goes_to_the_largest_power_of_two_bucket_not_above_it(
    delay: float, bucket: int | None
) -> None:
    assert bucket_for(delay) == bucket


@pytest.mark.parametrize(
    ("delay", "threshold", "hops"),
    [
        (3.5, 0.0, [2, 1]),
        (1100.0, 600.0, [1024]),  # then 76 s left: held in memory
        (700.0, 600.0, [512]),
        (600.0, 600.0, []),
        (7 * 86400.0, 600.0, [524288, 65536, 8192, 4096, 2048, 512]),
    ],
)
def test_a_long_delay_is_parked_in_ever_smaller_buckets_until_it_is_near(
    delay: float, threshold: float, hops: list[int]
) -> None:
    assert plan_hops(delay, threshold) == hops
    assert sum(hops) <= delay  # never back late
    assert delay - sum(hops) <= max(threshold, 1.0)


def test_the_largest_bucket_fits_rabbitmqs_32_bit_millisecond_ttls() -> None:
    args = delay_queue_arguments("celery", MAX_BUCKET)
    assert args["x-message-ttl"] < 2**32 and args["x-expires"] < 2**32


def test_a_bucket_queue_dead_letters_to_its_target_and_expires_after_its_ttl() -> None:
    assert delay_queue_name("celery", 64) == "amqptool.delay.celery.64"
    assert delay_queue_arguments("celery", 64) == {
        "x-message-ttl": 64_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "celery",
        "x-expires": 124_000,
    }


def test_a_target_queue_with_a_very_long_name_gets_a_hashed_bucket_name() -> None:
    long_name = "q" * 250
    name = delay_queue_name(long_name, 2**20)
    assert len(name.encode()) <= 255 and name.startswith("amqptool.delay.sha256-")
    assert name != delay_queue_name("q" * 251, 2**20)
    assert delay_queue_arguments(long_name, 8)["x-dead-letter-routing-key"] == long_name


def test_the_parked_copy_keeps_body_properties_and_headers_but_not_the_brokers_death_notes() -> (
    None
):
    original = Envelope(
        body=b"[[1], {}, {}]",
        properties=Properties(
            content_type="application/json",
            content_encoding="utf-8",
            correlation_id="c1",
            reply_to="r1",
            priority=3,
            delivery_mode=2,
            headers={
                "task": "t.add",
                "id": "c1",
                "x-death": [{"queue": "x"}],
                "x-first-death-queue": "x",
            },
        ),
        exchange="",
        routing_key="celery",
        delivery_tag=7,
    )
    copy = park_envelope(original, "celery", 4)
    assert (copy.exchange, copy.routing_key) == ("", "amqptool.delay.celery.4")
    assert copy.body == original.body
    assert copy.properties.headers == {"task": "t.add", "id": "c1"}
    assert copy.properties.correlation_id == "c1" and copy.properties.priority == 3
    assert "x-death" in original.properties.headers  # the original is left alone


@pytest.mark.parametrize(
    ("headers", "parked"),
    [
        (None, False),
        ({}, False),
        ({"x-death": [{"queue": "amqptool.delay.celery.4", "reason": "expired"}]}, True),
        ({"x-death": [{"queue": "other", "reason": "expired"}]}, False),
        ({"x-death": [{"queue": "amqptool.delay.celery.4", "reason": "rejected"}]}, False),
    ],
)
def test_a_delivery_tells_whether_it_came_back_from_parking(
    headers: dict[str, object] | None, parked: bool
) -> None:
    assert was_parked(headers) is parked


# ---------------------------------------------------------------------- real broker


@pytest.fixture
def conn(broker_url: str) -> Iterator[Connection]:
    connection = Connection(BrokerSettings.from_url(broker_url, environ={})).connect()
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def target(conn: Connection, unique_name: str) -> Iterator[str]:
    ch = conn.channel()
    ch.queue_declare(unique_name, durable=True)
    yield unique_name
    for bucket in (1, 2, 4, 64):
        ch.queue_delete(delay_queue_name(unique_name, bucket))
    ch.queue_delete(unique_name)
    ch.close()


def task_envelope(queue: str, eta_in: float) -> Envelope:
    msg = tasks.TaskMessage(
        task="proto_app.add",
        args=[2, 3],
        eta=utcnow() + timedelta(seconds=eta_in),
        reply_to="reply-q",
        correlation_id="ignored",
        stamps={"mystamp": "blue"},
        stamped_headers=["mystamp"],
    )
    return tasks.encode_task(msg, routing_key=queue)


def wait_for_message(ch: Channel, queue: str, timeout: float = 15.0) -> tuple[Envelope, float]:
    def arrived() -> tuple[Envelope, float] | None:
        env = ch.get(queue)
        return None if env is None else (env, time.monotonic())

    return wait_until(arrived, timeout=timeout, interval=0.02, message=f"a message in {queue}")


def test_a_message_parked_for_one_second_comes_back_to_its_queue_intact(
    conn: Connection, target: str
) -> None:
    ch = conn.channel(confirm=True)
    original = task_envelope(target, eta_in=1.5)
    start = time.monotonic()
    assert park(ch, original, target, 1.5) == 1
    assert ch.queue_declare(target, passive=True).message_count == 0
    assert ch.queue_declare(delay_queue_name(target, 1), passive=True).message_count == 1

    back, arrived = wait_for_message(ch, target)
    assert arrived - start >= 0.95  # the 1 s bucket's TTL, never before
    ch.ack(back.delivery_tag or 0)
    assert back.body == original.body
    assert (back.exchange, back.routing_key) == ("", target)
    for name in ("content_type", "content_encoding", "correlation_id", "reply_to", "priority"):
        assert getattr(back.properties, name) == getattr(original.properties, name), name
    assert back.properties.delivery_mode == 2
    kept = {k: v for k, v in back.headers.items() if not k.startswith("x-")}
    assert kept == original.headers
    assert was_parked(back.headers)
    again = tasks.decode_task(back)
    assert again.eta == tasks.decode_task(original).eta
    assert again.stamps == {"mystamp": "blue"}


def test_a_message_parked_for_3_5_s_hops_twice_and_is_back_no_earlier_than_3_s(
    conn: Connection, target: str
) -> None:
    ch = conn.channel(confirm=True)
    start = time.monotonic()
    due = start + 3.5
    hops = [park(ch, task_envelope(target, 3.5), target, due - time.monotonic())]
    arrivals = []
    while True:  # what the worker does with each delivery of a parked task
        env, arrived = wait_for_message(ch, target)
        arrivals.append(arrived - start)
        now = utcnow()
        eta = now + timedelta(seconds=due - arrived)
        if decide(eta, now, threshold=0.0) != "park":
            ch.ack(env.delivery_tag or 0)
            break
        hops.append(park(ch, env, target, due - arrived))
        ch.ack(env.delivery_tag or 0)  # only after the broker confirmed the parked copy
    assert hops == [2, 1]
    assert 1.95 <= arrivals[0] < 3.0  # back after the 2 s bucket, before the eta: parked again
    assert arrivals[1] >= 2.95  # then the 1 s bucket: the rest (<1 s) is held in memory


def test_parked_messages_with_delays_in_one_bucket_share_its_queue(
    conn: Connection, target: str, broker_vhost: str
) -> None:
    ch = conn.channel(confirm=True)
    for delay in (64, 80.5, 100, 127.9):
        assert park(ch, task_envelope(target, delay), target, delay) == 64
    assert ch.queue_declare(delay_queue_name(target, 64), passive=True).message_count == 4
    listed = json.loads(
        rabbitmqctl("list_queues", "-p", broker_vhost, "name", "arguments", "--formatter", "json")
    )
    (queue,) = [q for q in listed if q["name"] == delay_queue_name(target, 64)]
    declared = {name: value for name, _type, value in queue["arguments"]}
    assert declared == delay_queue_arguments(target, 64)


def test_a_worker_that_dies_before_its_ack_loses_nothing(
    broker_url: str, conn: Connection, target: str
) -> None:
    ch = conn.channel(confirm=True)
    ch.publish(task_envelope(target, 64))
    dying = Connection(BrokerSettings.from_url(broker_url, environ={})).connect()
    try:
        dch = dying.channel(confirm=True)
        got = dch.get(target)
        assert got is not None
        park(dch, got, target, 64)
    finally:
        dying.close()  # no ack: the worker died between the confirm and the ack
    back, _ = wait_for_message(ch, target, timeout=10)
    assert back.redelivered
    ch.ack(back.delivery_tag or 0)
    assert ch.queue_declare(delay_queue_name(target, 64), passive=True).message_count == 1


def test_park_needs_publisher_confirms_and_a_delay_of_at_least_a_second(
    conn: Connection, target: str
) -> None:
    env = task_envelope(target, 10)
    with pytest.raises(ValueError, match="confirm=True"):
        park(conn.channel(), env, target, 10)
    with pytest.raises(ValueError, match="too short to park"):
        park(conn.channel(confirm=True), env, target, 0.5)
