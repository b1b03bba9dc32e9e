"""Reading RabbitMQ's 406 texts about an existing queue's declaration (pure)."""

from __future__ import annotations

import pytest

from amqptool.transport.existing import QueueShape, parse_inequivalence

VH = "for queue 'a q' in vhost 'v/1':"
CUR = "but current is the value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"406: inequivalent arg 'x-queue-type' {VH} received 'classic' but current is 'quorum'",
            ("x-queue-type", "quorum"),
        ),
        (
            f"inequivalent arg 'x-max-priority' {VH} received none {CUR} '10' of type 'signedint'",
            ("x-max-priority", 10),
        ),
        (
            f"inequivalent arg 'x-message-ttl' {VH} received '5' but current is none",
            ("x-message-ttl", None),
        ),
        (
            f"inequivalent arg 'durable' {VH} received 'false' but current is 'true'",
            ("durable", True),
        ),
        (
            f"inequivalent arg 'auto_delete' {VH} received 'true' but current is 'false'",
            ("auto_delete", False),
        ),
        (
            f"inequivalent arg 'x-dlx' {VH} received none {CUR} 'd' of type 'longstr'",
            ("x-dlx", "d"),
        ),
    ],
)
def test_the_current_value_is_read(text: str, expected: tuple[str, object]) -> None:
    assert parse_inequivalence(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "NOT_FOUND - no queue 'x' in vhost '/'",
        f"inequivalent arg 'x-args' {VH} received none {CUR} '[1]' of type 'array'",
        "",
    ],
)
def test_other_texts_are_not_guessed_at(text: str) -> None:
    assert parse_inequivalence(text) is None


def test_queue_type() -> None:
    assert QueueShape("q", True, False, {"x-queue-type": "quorum"}).queue_type == "quorum"
    assert QueueShape("q", True, False, {"x-max-priority": 3}).queue_type == "classic"
    assert QueueShape("q", True, False, {}, known=False).queue_type == "unknown"
