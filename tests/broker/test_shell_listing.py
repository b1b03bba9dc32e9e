"""Listing through the management API (plugin enabled by scripts/ensure_broker.py), JSON, the
plugin-missing message, and live completion names refreshed from the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from amqptool.settings import BrokerSettings
from amqptool.shell.completer import ShellCompleter
from amqptool.shell.core.names import KnownNames
from amqptool.shell.listing import NameRefresher, client_factory
from amqptool.transport import Connection
from tests.brokers import free_port
from tests.harness import unique, wait_until
from tests.netfakes import http_answering
from tests.shell_support import LiveShell, live_shell, run_cli

PLUGIN_HINT = "rabbitmq-plugins enable rabbitmq_management"


def rows_of(sh: LiveShell, line: str, what: str) -> list[dict[str, object]]:
    doc = json.loads(sh.ok(line))
    assert doc["ok"] and doc["result"]["count"] == len(doc["result"][what])
    rows: list[dict[str, object]] = doc["result"][what]
    return rows


def eventually(check: Callable[[], bool], what: str) -> None:
    """The API's figures lag the broker by a statistics interval: wait for the condition."""
    wait_until(check, timeout=30, interval=0.5, message=what)


def test_queue_list_shows_counts_type_and_rates(broker_url: str) -> None:
    q, other = unique("i18-list"), unique("i18-other")
    with live_shell(broker_url) as sh, live_shell(broker_url, json_mode=True) as js:
        sh.ok(f"queue.declare {q}")
        sh.ok(f"queue.declare {other}")
        for i in range(3):
            sh.ok(f"basic.publish m{i} '' {q}")
        sh.ok(f"basic.get {q}")  # one unacknowledged

        def counted() -> bool:
            rows = rows_of(js, f"queue.list {q}", "queues")
            return [(r["ready"], r["unacked"]) for r in rows] == [(2, 1)]

        eventually(counted, "queue.list to show 2 ready, 1 unacked")
        rows = rows_of(js, f"queue.list {q}", "queues")
        assert rows[0]["name"] == q and rows[0]["type"] == "classic"
        assert set(rows[0]) >= {"consumers", "publish/s", "deliver/s"}
        text = sh.ok(f"queue.list {q}").splitlines()
        assert text[0].split()[:5] == ["name", "type", "ready", "unacked", "consumers"]
        assert text[1].split()[:5] == [q, "classic", "2", "1", "0"]
        # a glob matches whole names, plain text any part
        assert [r["name"] for r in rows_of(js, "queue.list i18-list*", "queues")] == [q]
        names = {r["name"] for r in rows_of(js, "queue.list i18-", "queues")}
        assert {q, other} <= names
        sh.ok(f"queue.delete {q}")
        sh.ok(f"queue.delete {other}")


def test_exchange_binding_consumer_connection_vhost_and_overview(broker_url: str) -> None:
    ex, q = unique("i18-ex"), unique("i18-bq")
    vhost = unquote(broker_url.rsplit("/", 1)[1])
    settings = BrokerSettings.from_url(broker_url, environ={})
    with live_shell(broker_url) as sh, live_shell(broker_url, json_mode=True) as js:
        sh.ok(f"exchange.declare {ex} topic")
        sh.ok(f"queue.declare {q}")
        sh.ok(f"queue.bind {q} {ex} orders.#")
        assert [r["type"] for r in rows_of(js, f"exchange.list {ex}", "exchanges")] == ["topic"]
        bindings = rows_of(js, f"binding.list {ex}", "bindings")
        assert [(b["source"], b["destination"], b["routing_key"]) for b in bindings] == [
            (ex, q, "orders.#")
        ]
        with Connection(settings, name="i18-consumer") as conn:
            ch = conn.channel()
            tag = ch.consume(q, lambda _env: None)
            eventually(
                lambda: (
                    [c["consumer_tag"] for c in rows_of(js, f"consumer.list {q}", "consumers")]
                    == [tag]
                ),
                "consumer.list to show the consumer",
            )
            eventually(
                lambda: any(
                    c["client"] == "i18-consumer"
                    for c in rows_of(js, "connection.list", "connections")
                ),
                "connection.list to show the consumer's connection",
            )
        assert vhost in {v["name"] for v in rows_of(js, "vhost.list amqptool-test", "vhosts")}
        overview = rows_of(js, "overview", "overview")[0]
        assert overview["vhost"] == vhost and str(overview["rabbitmq"]).count(".") >= 1
        assert "rabbitmq" in sh.ok("overview")
        sh.ok(f"queue.delete {q}")
        sh.ok(f"exchange.delete {ex}")


def test_no_management_api_is_one_line_naming_the_plugin(cli_env: dict[str, str]) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    proc = run_cli("--mgmt-url", nothing, "queue.list", env=cli_env)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0] and PLUGIN_HINT in lines[0]
    q = unique("i18-noapi")
    batch = f"queue.declare {q}\nqueue.list\nqueue.delete {q}\n"
    proc = run_cli("--mgmt-url", nothing, "-f", "-", env=cli_env, stdin=batch)
    assert proc.returncode == 1  # the listing failed; the AMQP commands around it did not
    assert proc.stdout.splitlines()[0].startswith(f"ok. queue:{q}")
    assert proc.stdout.splitlines()[1] == "ok. 0 messages deleted."
    with http_answering(404, b"<html>not found</html>") as port:
        proc = run_cli("--mgmt-url", f"http://127.0.0.1:{port}", "queue.list", env=cli_env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "(HTTP 404)" in lines[0] and PLUGIN_HINT in lines[0]


def test_wrong_api_credentials_exit_71(cli_env: dict[str, str]) -> None:
    proc = run_cli("--mgmt-url", "http://guest:wrong@127.0.0.1:15672", "queue.list", env=cli_env)
    assert proc.returncode == 71
    assert "refused the credentials" in proc.stderr and "wrong" not in proc.stderr


def test_completion_offers_a_queue_another_client_declared(broker_url: str) -> None:
    q = unique("i18-live")
    settings = BrokerSettings.from_url(broker_url, environ={})
    names = KnownNames()
    completer = ShellCompleter(names)
    refresher = NameRefresher(client_factory(settings, None), names, interval=0.5).start()

    def offered() -> list[str]:
        doc = Document("queue.declare i18-live")
        return [c.text for c in completer.get_completions(doc, CompleteEvent())]

    try:
        assert refresher.refreshed.wait(30)
        assert q not in offered()
        with Connection(settings, name="i18-other-client") as conn:
            conn.channel().queue_declare(q, auto_delete=False)
            wait_until(lambda: q in offered(), timeout=30, interval=0.2, message="live completion")
            conn.channel().queue_delete(q)
    finally:
        refresher.stop()
