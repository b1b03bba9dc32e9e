"""Nothing a user types crashes the shell: generated lines through parser, runner and output.

The dispatcher runs on an in-memory channel here (the broker behaviour itself is tested in
test_shell_broker.py); what is checked is that every line ends as a result or a usage/broker
error, never an internal error or an exception.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ChannelClosedError, UsageError
from amqptool.shell.core.command_table import COMMANDS
from amqptool.shell.runner import Runner
from amqptool.shell.session import Shell
from amqptool.transport import QueueInfo


class FakeChannel:
    """Answers like a broker would; queues named ``missing*`` do not exist."""

    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.is_open = True
        self.tag = 0

    def _check(self, name: str) -> None:
        if name.startswith("missing"):
            self.is_open = False
            raise ChannelClosedError(f"404 NOT_FOUND - no queue '{name}'", reply_code=404)

    def close(self) -> None:
        self.is_open = False

    def exchange_declare(self, exchange: str, type: str = "direct", **_: Any) -> None:
        self._check(exchange)

    def exchange_delete(self, exchange: str, **_: Any) -> None:
        self._check(exchange)

    def exchange_bind(self, destination: str, source: str, *_: Any) -> None:
        self._check(source)

    exchange_unbind = exchange_bind

    def queue_declare(self, queue: str = "", **_: Any) -> QueueInfo:
        self._check(queue)
        return QueueInfo(queue or "amq.gen-x", 0, 0)

    def queue_delete(self, queue: str, **_: Any) -> int:
        self._check(queue)
        return 0

    def queue_purge(self, queue: str) -> int:
        self._check(queue)
        return 0

    def queue_bind(self, queue: str, exchange: str, *_: Any) -> None:
        self._check(queue)

    queue_unbind = queue_bind

    def publish(
        self, env: Envelope, *, mandatory: bool = False, timeout: float | None = None
    ) -> None:
        self._check(env.exchange)

    def _message(self) -> Envelope:
        self.tag += 1
        return Envelope(
            body=b"\xff\x00 body",
            properties=Properties(content_type="application/json", headers={"h": [1, b"x"]}),
            delivery_tag=self.tag,
            message_count=0,
        )

    def get(self, queue: str, *, no_ack: bool = False) -> Envelope | None:
        self._check(queue)
        return self._message() if self.tag % 2 == 0 else None

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        pass

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None:
        pass

    def reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        pass

    def recover(self, *, requeue: bool = True) -> None:
        pass

    def qos(self, prefetch_count: int, *, prefetch_size: int = 0, global_qos: bool = False) -> None:
        pass

    def consume(
        self, queue: str, callback: Callable[[Envelope], None], **_: Mapping[str, Any]
    ) -> str:
        self._check(queue)
        self.conn.deliver = lambda: callback(self._message())
        return "ctag"

    def cancel(self, consumer_tag: str) -> None:
        self.conn.deliver = None


class FakeConnection:
    def __init__(self) -> None:
        self.is_open = False
        self.deliver: Callable[[], None] | None = None

    def connect(self) -> FakeConnection:
        self.is_open = True
        return self

    def close(self) -> None:
        self.is_open = False

    def abort(self) -> None:
        self.is_open = False

    def connected_to(self) -> str:
        return "fake://"

    def channel(self, *, confirm: bool = False) -> FakeChannel:
        return FakeChannel(self)

    def process_events(self, time_limit: float | None = 0) -> None:
        if self.deliver is not None:
            self.deliver()


def fake_shell(*, json_mode: bool = False) -> tuple[Shell, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Shell(Runner(FakeConnection()), stdout=out, stderr=err, json_mode=json_mode), out, err


_WORDS = st.sampled_from(
    [
        "yes", "no", "on", "0", "1", "-3", "40", "0.01", "''", '"a b"', "'", "--", "missing",
        "q", "x-message-ttl=5", "x-max-length=big", "x-queue-type=quorum", "headers.a=1",
        "headers.n:int=x", "headers.j:json=[1]", "priority=9", "delivery_mode=2", "peek",
        "manual", "ack", "arg.k=v", "durable=yes", "=", "a=b", "\\", "#", "ünï", "\x00",
    ]
)  # fmt: skip
_TOKEN = st.one_of(_WORDS, st.text(max_size=10), st.integers(-5, 50).map(str))
_LINES = st.builds(
    lambda cmd, toks: " ".join([cmd, *toks]),
    st.sampled_from([*COMMANDS, "queue.delcare", "", "#"]),
    st.lists(_TOKEN, max_size=7),
)


@pytest.fixture(autouse=True, scope="module")
def _in_a_scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generated lines may name files (``queue.export q FILE``, ``basic.publish @FILE``): they
    are written in a folder of this module's own, never in the checkout."""
    folder = tmp_path_factory.mktemp("shell-fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        yield folder


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_LINES, st.text(max_size=40)), min_size=1, max_size=6), st.booleans())
def test_generated_lines_end_as_results_or_clean_errors(lines: list[str], json_mode: bool) -> None:
    shell, out, err = fake_shell(json_mode=json_mode)
    for line in lines:
        outcome = shell.run_line(line)
        if outcome is None or outcome.error is None:
            continue
        assert isinstance(outcome.error, UsageError | ChannelClosedError), outcome.error
        assert "internal error" not in outcome.error.message
        assert "\n" not in outcome.error.user_line()
    assert "internal error" not in err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
