"""Parking buckets for a quorum task queue: replicated, named apart from the classic ones."""

from __future__ import annotations

from amqptool.codec.envelope import Envelope
from amqptool.transport.delayed import (
    delay_queue_arguments,
    delay_queue_name,
    park_envelope,
    was_parked,
)


def test_a_quorum_bucket_is_a_quorum_queue_that_dead_letters_at_least_once() -> None:
    args = delay_queue_arguments("tasks", 64, quorum=True)
    assert args == {
        "x-message-ttl": 64_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "tasks",
        "x-expires": 124_000,
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # what RabbitMQ asks of at-least-once dead-lettering
    }
    assert "x-queue-type" not in delay_queue_arguments("tasks", 64)


def test_quorum_and_classic_bucket_names_never_meet() -> None:
    assert delay_queue_name("tasks", 64, quorum=True) == "amqptool.delay.tasks.64.quorum"
    classic = {delay_queue_name(t, b) for t in ("tasks", "tasks.64", "x.quorum") for b in (1, 64)}
    quorum = {
        delay_queue_name(t, b, quorum=True)
        for t in ("tasks", "tasks.64", "x.quorum")
        for b in (1, 64)
    }
    assert not classic & quorum
    assert len(quorum) == 6


def test_a_long_target_keeps_the_suffix_and_fits_in_255_bytes() -> None:
    long_name = "q" * 250
    name = delay_queue_name(long_name, 2**20, quorum=True)
    assert name.endswith(".1048576.quorum") and len(name.encode()) <= 255
    assert name != delay_queue_name(long_name, 2**20)


def test_the_copy_goes_to_the_quorum_bucket_and_comes_back_recognised() -> None:
    copy = park_envelope(Envelope(body=b"{}"), "tasks", 8, quorum=True)
    assert copy.routing_key == "amqptool.delay.tasks.8.quorum" and copy.exchange == ""
    death = {"queue": copy.routing_key, "reason": "expired"}
    assert was_parked({"x-death": [death]})
