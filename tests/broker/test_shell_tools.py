"""The shell's message tools on the real broker: move, export/import, @FILE bodies, tap, the
quorum peek warning and typed stream offsets."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.brokers import free_port
from tests.harness import unique
from tests.shell_support import LiveShell, fill_queue, live_shell, run_cli


def depth(sh: LiveShell, queue: str) -> int:
    out = sh.ok(f"queue.declare {queue} passive=yes")
    return int(out.split("messages:")[1].split()[0])


def drain(url: str, queue: str) -> list[Envelope]:
    settings = BrokerSettings.from_url(url, environ={})
    out: list[Envelope] = []
    with Connection(settings, name="i18-drain") as conn:
        ch = conn.channel()
        while (env := ch.get(queue, no_ack=True)) is not None:
            out.append(env)
    return out


def test_queue_move_moves_the_count_asked_then_the_rest(broker_url: str) -> None:
    src, dst = unique("i18-src"), unique("i18-dst")
    with live_shell(broker_url) as sh, live_shell(broker_url, json_mode=True) as js:
        sh.ok(f"queue.declare {src}")
        sh.ok(f"queue.declare {dst}")
        fill_queue(broker_url, src, [f"m{i}".encode() for i in range(300)])
        assert sh.ok(f"queue.move {src} {dst} 100") == (
            f"ok. 100 messages moved from {src} to {dst}.\n"
        )
        assert (depth(sh, src), depth(sh, dst)) == (200, 100)
        doc = json.loads(js.ok(f"queue.move {src} {dst}"))
        assert doc["result"] == {"moved": 200, "source": src, "destination": dst}
        assert (depth(sh, src), depth(sh, dst)) == (0, 300)
        assert [e.body for e in drain(broker_url, dst)] == [f"m{i}".encode() for i in range(300)]
        step = sh.fail(f"queue.move {src} no-such-queue-{src}")
        assert "404" in step.err and (depth(sh, src)) == 0
        sh.ok(f"queue.delete {src}")
        sh.ok(f"queue.delete {dst}")


def test_export_then_import_keeps_bodies_properties_and_headers(
    broker_url: str, tmp_path: Path
) -> None:
    q, back = unique("i18-exp"), unique("i18-imp")
    headers = {
        "n": 7,
        "s": "text",
        "flag": True,
        "raw": b"\xff\x00",
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "price": Decimal("1.50"),
        "nested": {"list": [1, "two", {"three": 3}]},
    }
    props = Properties(
        content_type="application/x-thing",
        content_encoding="binary",
        headers=headers,
        delivery_mode=2,
        priority=4,
        correlation_id="c-1",
        message_id="m-1",
        timestamp=1_700_000_000,
        app_id="i18",
    )
    bodies = [b"plain text", b"\x80\x81 not utf-8", "h\u00e9llo".encode()]
    path = tmp_path / "export.jsonl"
    with live_shell(broker_url) as sh:
        sh.ok(f"queue.declare {q}")
        sh.ok(f"queue.declare {back}")
        fill_queue(broker_url, q, bodies, props)
        assert sh.ok(f"queue.export {q} {path}") == (
            f"ok. 3 messages exported to {path} (left in {q}).\n"
        )
        assert depth(sh, q) == 3  # nothing lost, nothing removed
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [("body" in r, "body_base64" in r) for r in records] == [
            (True, False),
            (False, True),
            (True, False),
        ]
        assert sh.ok(f"queue.import {path} {back}") == (
            f"ok. 3 messages imported from {path} into {back}.\n"
        )
        assert "exists" in sh.fail(f"queue.export {q} {path}").err  # never overwrites
        again = tmp_path / "removed.jsonl"
        assert "removed from" in sh.ok(f"queue.export {q} {again} 2 remove=yes")
        assert depth(sh, q) == 1 and len(again.read_text().splitlines()) == 2
        copies = drain(broker_url, back)
        assert [e.body for e in copies] == bodies
        for env in copies:
            got = env.properties
            assert got.headers == headers
            assert (got.content_type, got.delivery_mode, got.priority, got.timestamp) == (
                "application/x-thing",
                2,
                4,
                1_700_000_000,
            )
            assert (got.correlation_id, got.message_id, got.app_id) == ("c-1", "m-1", "i18")
        sh.ok(f"queue.delete {q}")
        sh.ok(f"queue.delete {back}")


def test_publish_a_body_from_a_file_or_stdin(
    broker_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    q = unique("i18-file")
    blob = bytes(range(256)) * 4
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "multi.txt").write_text("line one\nline two\n")
    with live_shell(broker_url) as sh:
        sh.ok(f"queue.declare {q}")
        sh.ok(f"basic.publish @{tmp_path / 'blob.bin'} '' {q}")
        sh.ok(f"basic.publish @{tmp_path / 'multi.txt'} '' {q}")
        sh.ok(f"basic.publish @@literal '' {q}")
        assert "cannot read" in sh.fail(f"basic.publish @{tmp_path / 'none'} '' {q}").err
        proc = run_cli("basic.publish", "@-", "", q, env=cli_env, stdin="from stdin\n")
        assert proc.returncode == 0, proc.stderr
        got = drain(broker_url, q)
        assert [e.body for e in got] == [
            blob,
            b"line one\nline two\n",
            b"@literal",
            b"from stdin\n",
        ]
        assert got[0].properties.content_type == "application/octet-stream"
        assert got[1].properties.content_type == "text/plain"
        sh.ok(f"queue.delete {q}")


def test_exchange_tap_shows_copies_and_takes_nothing(broker_url: str) -> None:
    ex, q = unique("i18-tapx"), unique("i18-tapq")
    stop = threading.Event()
    settings = BrokerSettings.from_url(broker_url, environ={})
    with live_shell(broker_url) as sh:
        sh.ok(f"exchange.declare {ex} topic")
        sh.ok(f"queue.declare {q}")
        sh.ok(f"queue.bind {q} {ex} orders.*")

        def feed() -> None:
            with Connection(settings, name="i18-tap-feeder") as conn:
                ch = conn.channel(confirm=True)
                i = 0
                while not stop.is_set():
                    ch.publish(
                        Envelope(body=f"o{i}".encode(), exchange=ex, routing_key="orders.new")
                    )
                    i += 1
                    conn.sleep(0.05)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            out = sh.ok(f"exchange.tap {ex} orders.# 3 10")
        finally:
            stop.set()
            feeder.join(10)
        assert out.count("'body': 'o") == 3 and out.endswith("ok. 3 messages tapped.\n")
        assert depth(sh, q) >= 3  # the real queue still got every message
        bound = [line for line in sh.ok(f"binding.list {ex}").splitlines()[1:] if line.strip()]
        assert len(bound) == 1  # the tap's queue is gone
        sh.ok(f"queue.delete {q}")
        sh.ok(f"exchange.delete {ex}")


def test_a_peek_on_a_quorum_queue_with_a_delivery_limit_warns(broker_url: str) -> None:
    q = unique("i18-quorum")
    with live_shell(broker_url) as sh:
        sh.ok(f"queue.declare {q} durable=yes x-queue-type=quorum x-delivery-limit=1")
        sh.ok(f"basic.publish keep '' {q}")
        step = sh.run(f"basic.consume {q} 1 5 peek")
        assert step.outcome.ok
        assert "quorum queue: each peek requeues" in step.err and "x-delivery-limit=1" in step.err
        sh.ok(f"queue.delete {q}")


@pytest.mark.parametrize(("offset", "expected"), [("first", 3), ("1", 2)])
def test_stream_offsets_are_typed(broker_url: str, offset: str, expected: int) -> None:
    q = unique("i18-stream")
    with live_shell(broker_url) as sh:
        sh.ok(f"queue.declare {q} durable=yes x-queue-type=stream")
        fill_queue(broker_url, q, [b"s0", b"s1", b"s2"])
        out = sh.ok(f"basic.consume {q} 3 2 manual x-stream-offset={offset}")
        assert out.count("'body': 's") == expected
        assert "expected first, last, next" in sh.fail(f"basic.consume {q} x-stream-offset=x").err
        sh.ok(f"queue.delete {q}")


def test_without_the_api_a_second_peek_still_warns(broker_url: str) -> None:
    q = unique("i18-quorum-noapi")
    with live_shell(broker_url, mgmt_url=f"http://127.0.0.1:{free_port()}") as sh:
        sh.ok(f"queue.declare {q} durable=yes x-queue-type=quorum x-delivery-limit=5")
        sh.ok(f"basic.publish keep '' {q}")
        first = sh.run(f"basic.consume {q} 1 5 peek")
        assert first.outcome.ok and "warning" not in first.err
        second = sh.run(f"basic.consume {q} 1 5 peek")
        assert second.outcome.ok and "carry x-delivery-count" in second.err
        sh.ok(f"queue.delete {q}")


def test_export_to_stdout_keeps_stdout_to_the_json_lines(
    broker_url: str, cli_env: dict[str, str]
) -> None:
    q = unique("i18-stdout")
    fill_queue(broker_url, q, [b"a", b"b"])
    proc = run_cli("queue.export", q, "-", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["body"] for line in proc.stdout.splitlines()] == ["a", "b"]
    assert proc.stderr == f"ok. 2 messages exported to - (left in {q}).\n"
    proc = run_cli("queue.delete", q, env=cli_env)
    assert proc.stdout == "ok. 2 messages deleted.\n"
