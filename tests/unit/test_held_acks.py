"""A finished task's ack waits for the broker to confirm what was published before it."""

from __future__ import annotations

from amqptool.codec.envelope import Envelope
from amqptool.settings import BrokerSettings
from amqptool.transport import Pending
from worker.config import WorkerConfig
from worker.runtime.link import BrokerLink


class _Publisher:
    """Only what ack_after_publishes reads: the latest message handed in."""

    def __init__(self) -> None:
        self.last: Pending | None = None


def link_with_publishers() -> tuple[BrokerLink, _Publisher]:
    settings = BrokerSettings.from_url("amqp://guest:guest@localhost//", environ={})
    link = BrokerLink(WorkerConfig.build(settings, pool="solo"))
    pub = _Publisher()
    link.pub = pub  # type: ignore[assignment]  # a stand-in exposing .last only
    return link, pub


def test_ack_waits_for_the_confirm_of_what_went_before_it() -> None:
    link, pub = link_with_publishers()
    for tag in (1, 2, 3):
        link.acks.delivered(tag)
    link.ack_after_publishes(1)  # nothing published yet: ready at once
    result = pub.last = Pending(Envelope(body=b"result of 2"))
    link.ack_after_publishes(2)
    link.ack_after_publishes(3)  # behind 2: held by the same barrier
    assert link.acks.flush() == [(1, False)]
    link.flush_acks()  # no channel: nothing sent, still held
    assert link.acks.flush() == []
    result.done = True  # the broker confirmed the result
    link.flush_acks()
    assert link.acks.flush() == [(3, True)]


def test_a_refused_publish_still_releases_the_ack() -> None:
    link, pub = link_with_publishers()
    link.acks.delivered(1)
    refused = pub.last = Pending(Envelope(body=b"x"))
    link.ack_after_publishes(1)
    refused.done = True  # settled with an error (handled where it was refused)
    link.flush_acks()
    assert link.acks.flush() == [(1, False)]
