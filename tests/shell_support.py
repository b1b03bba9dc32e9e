"""Helpers for the shell tests: an in-process shell on the real broker, and the CLI."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ChannelClosedError
from amqptool.settings import BrokerSettings
from amqptool.shell.core.outcome import Outcome
from amqptool.shell.listing import Lister, client_factory
from amqptool.shell.runner import Runner
from amqptool.shell.session import Shell
from amqptool.transport import Connection
from tests.harness import ROOT


@dataclass
class Step:
    outcome: Outcome
    out: str
    err: str


@dataclass
class LiveShell:
    """A :class:`Shell` on a real connection; ``run`` returns what one line printed."""

    shell: Shell
    stdout: io.StringIO
    stderr: io.StringIO
    steps: list[Step] = field(default_factory=list)

    def run(self, line: str) -> Step:
        out_at, err_at = self.stdout.tell(), self.stderr.tell()
        outcome = self.shell.run_line(line)
        assert outcome is not None, f"{line!r} ran nothing"
        step = Step(
            outcome,
            self.stdout.getvalue()[out_at:],
            self.stderr.getvalue()[err_at:],
        )
        self.steps.append(step)
        return step

    def ok(self, line: str) -> str:
        """Run a line that must succeed; its stdout."""
        step = self.run(line)
        assert step.outcome.ok, f"{line!r} failed: {step.err}"
        return step.out

    def fail(self, line: str) -> Step:
        step = self.run(line)
        assert not step.outcome.ok, f"{line!r} unexpectedly succeeded: {step.out}"
        return step

    @property
    def runner(self) -> Runner:
        return self.shell.runner


def new_shell(url: str, *, json_mode: bool = False, mgmt_url: str | None = None) -> LiveShell:
    settings = BrokerSettings.from_url(url, environ={})
    out, err = io.StringIO(), io.StringIO()
    runner = Runner(Connection(settings, name="amqptool shell test"))
    lister = Lister(client_factory(settings, mgmt_url))
    shell = Shell(runner, stdout=out, stderr=err, json_mode=json_mode, lister=lister)
    runner.notify = shell.info
    return LiveShell(shell, out, err)


@contextmanager
def live_shell(
    url: str, *, json_mode: bool = False, mgmt_url: str | None = None
) -> Iterator[LiveShell]:
    live = new_shell(url, json_mode=json_mode, mgmt_url=mgmt_url)
    try:
        yield live
    finally:
        live.runner.close()


def fill_queue(url: str, queue: str, bodies: list[bytes], props: Properties | None = None) -> None:
    """Publish ``bodies`` to ``queue`` (declared as a plain queue unless it exists), each one
    confirmed, from another connection."""
    settings = BrokerSettings.from_url(url, environ={})
    with Connection(settings, name="amqptool test feeder") as conn:
        try:
            conn.channel().queue_declare(queue, passive=True)
        except ChannelClosedError:
            conn.channel().queue_declare(queue)
        ch = conn.channel(confirm=True)
        for body in bodies:
            ch.publish(Envelope(body=body, properties=props or Properties(), routing_key=queue))


def run_cli(
    *args: str, env: Mapping[str, str], stdin: str | None = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m amqptool shell ARGS`` with stdin from a pipe (so never interactive)."""
    return subprocess.run(
        [sys.executable, "-m", "amqptool", "shell", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def walkthrough_output(ex: str, q: str) -> str:
    """camqadm's output for the seed walkthrough (exchange ``ex``, queue ``q``)."""
    return (
        "ok.\n"
        f"ok. queue:{q} messages:0 consumers:0.\n"
        "ok.\n"
        "ok.\n"
        "{'body': 'This is a message!',\n"
        " 'delivery_info': {'delivery_tag': 1,\n"
        f"                   'exchange': '{ex}',\n"
        "                   'message_count': 0,\n"
        "                   'redelivered': False,\n"
        "                   'routing_key': 'testkey'},\n"
        " 'properties': {'content_type': 'text/plain', 'content_encoding': 'utf-8'}}\n"
        "ok.\n"
        "ok. 0 messages deleted.\n"
        "ok.\n"
    )
