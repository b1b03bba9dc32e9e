"""Hostile peers on the broker: escape sequences never reach a terminal from text output, and a
reply that is not a well-formed reply is shown as such, not counted as a node.

A rogue process answers on ``celery.pidbox`` with escape sequences in the node name and in the
reply, plus replies that are no reply at all; a message body and an event carry the same bytes.
Every text output (control, call, shell basic.get, monitor --dump, error lines) is read as raw
bytes: no ESC (0x1b) and no C1 CSI (0x9b, UTF-8 ``c2 9b``) may appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pika
import pyte
import pytest

from tests.harness import ROOT, run_amqptool_bytes, unique, wait_until
from tests.worker_support import WorkerProcess

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil/\x1b\\link\x9b31m\u202e"
RAW_BYTES = (b"\x1b", b"\xc2\x9b", b"\x07", "\u202e".encode())


def _assert_inert(*chunks: bytes) -> None:
    for chunk in chunks:
        for raw in RAW_BYTES:
            assert raw not in chunk, (raw, chunk[:400])


class RogueResponder:
    """Answers every pidbox request with hostile and malformed replies."""

    def __init__(self, url: str) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare("celery.pidbox", "fanout", durable=False)
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, "celery.pidbox")
        self.ch.basic_consume(self.queue, self._on_request, auto_ack=True)
        self.answered = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_request(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        req = json.loads(body)
        reply_to, ticket = req.get("reply_to"), req.get("ticket")
        if not reply_to:
            return
        replies: list[Any] = [
            {"good@host": {"ok": HOSTILE}},  # a node, its text shown escaped
            {f"evil{HOSTILE}@host": {"ok": "pong"}},  # a node name with escapes: not a node
            {"a@host": {"ok": "pong"}, "b@host": {"ok": "pong"}},  # two nodes in one reply
            [HOSTILE],  # not an object
        ]
        for reply in [*replies, None]:
            body_out = b"\x1b[2J not json" if reply is None else json.dumps(reply).encode()
            ch.basic_publish(
                reply_to["exchange"],
                reply_to["routing_key"],
                body_out,
                pika.BasicProperties(
                    content_type="application/json",
                    content_encoding="utf-8",
                    headers={"ticket": ticket, "clock": 1},
                ),
            )
        self.answered += 1

    def _run(self) -> None:
        while not self._stop:
            self.conn.process_data_events(time_limit=0.1)

    def __enter__(self) -> RogueResponder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.thread.join(10)
        self.conn.close()


@pytest.fixture
def rogue(fresh_vhost_url: str) -> Iterator[RogueResponder]:
    with RogueResponder(fresh_vhost_url) as responder:
        yield responder


def test_control_text_output_of_a_rogue_reply_is_inert(
    rogue: RogueResponder, fresh_vhost_url: str, cli_env: dict[str, str]
) -> None:
    env = dict(cli_env, AMQP_URL=fresh_vhost_url)
    proc = run_amqptool_bytes("control", "-t", "1", "ping", env=env)
    _assert_inert(proc.stdout, proc.stderr)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "->  good@host: OK" in out and "\\x1b]0;pwned\\x07" in out
    assert "1 node online." in out  # the malformed ones are not nodes
    assert err.count("not a well-formed reply, not counted") == 4
    assert "names 2 nodes" in err and "does not decode" in err
    # what a terminal would show: the text as printed, the title untouched, nothing erased
    screen = pyte.Screen(160, 40)
    pyte.ByteStream(screen).feed(proc.stdout.replace(b"\n", b"\r\n"))
    assert screen.title == "" and screen.display[0].startswith("->  good@host: OK")
    assert "\\x1b]0;pwned\\x07" in "".join(screen.display)
    js = run_amqptool_bytes("control", "-t", "1", "--json", "ping", env=env)
    assert js.returncode == 0
    assert list(json.loads(js.stdout)) == ["good@host"]


@pytest.mark.parametrize("mode", ["text", "json"])
def test_call_shell_and_dump_output_is_inert(
    mode: str, fresh_vhost_url: str, cli_env: dict[str, str]
) -> None:
    env = dict(cli_env, AMQP_URL=fresh_vhost_url)
    js = ["--json"] if mode == "json" else []
    with WorkerProcess(fresh_vhost_url, "-P", "threads", "-c", "2", "-E") as worker:
        dump = subprocess.Popen(
            [sys.executable, "-m", "amqptool", "monitor", "--dump", "--timeout", "60", *js],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lines: list[bytes] = []
        stdout = dump.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, b"")))
        reader.start()
        try:
            wait_until(lambda: lines, 30, message="the dump to show an event")
            ok = run_amqptool_bytes(
                "call", "peer.echo", HOSTILE, "-Q", worker.queue, "--timeout", "20", *js, env=env
            )
            bad = run_amqptool_bytes(
                "call", "peer.fail", HOSTILE, "-Q", worker.queue, "--timeout", "20", *js, env=env
            )
            wait_until(lambda: b"peer.fail" in b"".join(lines), 30, message="the task events")
        finally:
            dump.terminate()
            _, dump_err = dump.communicate(timeout=20)
            reader.join(10)
        dump_out = b"".join(lines)
        _assert_inert(worker.log.read_bytes())  # the worker's log: the failure, its traceback
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and "\\x1b" in bad.stderr.decode()
    _assert_inert(ok.stdout, ok.stderr, bad.stdout, bad.stderr)
    _assert_inert(dump_out, dump_err)
    assert b"peer.echo" in dump_out
    if mode == "json":  # the same values, escaped the JSON way
        assert json.loads(ok.stdout)["result"]["args"] == [HOSTILE]
        assert "pwned" in json.loads(bad.stdout)["exception"]
        assert all(json.loads(line) for line in dump_out.splitlines())
        return
    assert "pwned" in ok.stdout.decode() and "\\u009b31m" in ok.stdout.decode()  # JSON text
    assert b"\\x1b" in dump_out
    queue = unique("hostile")
    shell = run_amqptool_bytes("shell", f"queue.declare {queue}", env=env)
    assert shell.returncode == 0, shell.stderr
    conn = pika.BlockingConnection(pika.URLParameters(fresh_vhost_url))
    try:
        conn.channel().basic_publish("", queue, HOSTILE.encode())
    finally:
        conn.close()
    got = run_amqptool_bytes("shell", f"basic.get {queue}", env=env)
    assert got.returncode == 0, got.stderr
    assert b"\\x1b" in got.stdout
    _assert_inert(got.stdout, got.stderr)
