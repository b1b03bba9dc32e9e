"""The pipelined client's bookkeeping without a broker: refusal lines, the confirm mode, and
ConfirmedPublisher keeping every unconfirmed message across a resend cut short.

The publisher runs on a stand-in connection that records what is published and can fail
after a given number of publishes, as a connection lost again during a resend would.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pika.exceptions
import pytest

from amqptool.client import Client
from amqptool.client.refused import SHOWN_IDS, check_confirm_mode, name_ids, refusal
from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ChannelClosedError, ConnectionFailedError, PublishError, UsageError
from amqptool.transport import ConfirmedPublisher, Pending


def message(n: int) -> Envelope:
    return Envelope(body=b"m%d" % n, properties=Properties(), exchange="", routing_key="q")


def refused(task_id: str, error: Any) -> Pending:
    return Pending(message(0), done=True, error=error, data=(task_id, None))


def nack() -> PublishError:
    return PublishError("basic.publish: the broker nacked the message", reply_text="NACK")


def test_one_refusal_keeps_its_type_and_names_its_task_without_changing_the_original() -> None:
    closed = ChannelClosedError("basic.publish: 404 NOT_FOUND - no exchange 'x'", reply_code=404)
    item = refused("id-1", closed)
    err = refusal([item])
    assert isinstance(err, ChannelClosedError) and err.reply_code == 404
    assert str(err) == "task id-1: basic.publish: 404 NOT_FOUND - no exchange 'x'"
    assert str(refusal([item])) == str(err)  # asked twice (flush, then get): same line
    assert item.error is closed and str(closed).startswith("basic.publish")


def test_several_refusals_are_one_line_naming_a_few_ids_and_counting_the_rest() -> None:
    items = [refused(f"id-{n}", nack()) for n in range(SHOWN_IDS + 3)]
    err = refusal(items)
    assert isinstance(err, PublishError) and err.reply_text == "NACK"
    line = str(err)
    assert "\n" not in line
    assert line.startswith(f"the broker did not take {SHOWN_IDS + 3} tasks: id-0, id-1")
    assert f"id-{SHOWN_IDS - 1} and 3 more (first: basic.publish: the broker nacked" in line
    assert f"id-{SHOWN_IDS}," not in line


def test_refusal_of_messages_that_were_taken_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not refused"):
        refusal([Pending(message(0), done=True)])


def test_name_ids() -> None:
    assert name_ids(["a"]) == "a"
    assert name_ids([str(n) for n in range(SHOWN_IDS + 1)]).endswith(" and 1 more")


def test_confirm_mode_is_each_or_pipelined() -> None:
    assert check_confirm_mode("each") == "each"
    assert check_confirm_mode("pipelined") == "pipelined"
    with pytest.raises(UsageError, match="'each' or 'pipelined'"):
        Client(url="amqp://guest:guest@127.0.0.1:1//", confirm="batch")
    client = Client(url="amqp://guest:guest@127.0.0.1:1//")  # nothing connects yet
    assert client.confirm == "each" and client.unconfirmed == 0
    client.flush()  # nothing was sent: nothing to wait for, no connection made
    assert client._conn is None


class FakeConnection:
    """What ConfirmedPublisher uses of a Connection; publishes go to ``wire``."""

    max_message_size = 1 << 20
    blocked_reason = None
    is_open = True

    def __init__(self, fail_after: int | None = None) -> None:
        self.wire: list[bytes] = []
        self.fail_after = fail_after
        self.on_confirm: Any = None

    def _require(self) -> Any:
        return SimpleNamespace(channel=lambda: SimpleNamespace(_impl=FakeChannel(self)))

    def process_events(self, _limit: float | None = 0) -> None:
        pass

    def wake(self) -> None:
        pass

    def ack(self, tag: int) -> None:
        method = SimpleNamespace(NAME="Basic.Ack", delivery_tag=tag, multiple=True)
        self.on_confirm(SimpleNamespace(method=method))


class FakeChannel:
    """A pika Channel and its connection as far as publishing uses them."""

    is_open = True
    is_closed = False
    channel_number = 1
    _body_max_length = 1 << 20

    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.connection = self

    def _raise_if_not_open(self) -> None:
        pass

    def add_on_return_callback(self, _cb: Any) -> None:
        pass

    def add_on_close_callback(self, _cb: Any) -> None:
        pass

    def confirm_delivery(self, ack_nack_callback: Any, callback: Any) -> None:
        self.conn.on_confirm = ack_nack_callback
        callback(None)

    def _output_marshaled_frames(self, frames: list[bytes]) -> None:
        conn = self.conn
        if conn.fail_after is not None and len(conn.wire) >= conn.fail_after:
            raise pika.exceptions.StreamLostError("connection lost")
        conn.wire.append(frames[2][7:-1])  # the body frame's payload


def test_a_resend_cut_short_by_another_loss_keeps_every_message_for_the_next() -> None:
    first = FakeConnection()
    pub = ConfirmedPublisher(first, keep_failed=True)  # type: ignore[arg-type]  # a stand-in
    items = [pub.publish(message(n), data=(f"id-{n}", None)) for n in range(5)]
    assert pub.in_flight == 5  # the connection is lost before any confirm
    flaky = FakeConnection(fail_after=2)
    with pytest.raises(ConnectionFailedError):
        pub.rebind(flaky)  # type: ignore[arg-type]
    assert flaky.wire == [b"m0", b"m1"]
    assert pub.in_flight == 5 and pub.unconfirmed() == items  # none dropped, still in order
    last = FakeConnection()
    pub.rebind(last)  # type: ignore[arg-type]
    assert last.wire == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    later = pub.publish(message(5))
    assert last.wire[-1] == b"m5"
    last.ack(6)
    assert pub.in_flight == 0 and all(item.ok for item in [*items, later])
