"""Hostile remote control against a live worker: every command with bad values gets an error
reply and changes nothing; the worker keeps running tasks with results. With a control key,
unsigned or wrongly signed commands are refused, and our client signs its own."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.client.client import Client
from amqptool.control.client import ControlClient
from amqptool.monitor.actions import BrokerControl
from amqptool.settings import BrokerSettings
from tests.load import record_figures
from tests.worker_support import in_process_worker
from worker import Worker
from worker.control import registry

INF, NAN = float("inf"), float("nan")
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("time_limit", {"task_name": "peer.add", "hard": -1, "soft": -5}, ">= 0"),
    ("time_limit", {"task_name": "peer.add", "hard": "1e400"}, "finite"),
    ("time_limit", {"task_name": "peer.add", "hard": INF}, "finite"),
    ("time_limit", {"task_name": "peer.add", "soft": NAN}, "finite"),
    ("time_limit", {"task_name": "peer.add", "hard": 10**9}, "more than a week"),
    ("time_limit", {"task_name": "peer.add", "hard": True}, "number of seconds"),
    ("time_limit", {"task_name": "peer.add", "hard": [1]}, "number of seconds"),
    ("time_limit", {"task_name": ["peer.add"], "hard": 1}, "non-empty name"),
    ("time_limit", {"task_name": "peer.add\x1b[2J", "hard": 1}, "control characters"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": "garbage"}, "Invalid rate limit"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": "-5/s"}, "Invalid rate limit"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": "nan/m"}, "Invalid rate limit"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": "1e400/h"}, "Invalid rate limit"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": "5/fortnight"}, "Invalid rate limit"),
    ("rate_limit", {"task_name": "peer.add", "rate_limit": {"n": 5}}, "Invalid rate limit"),
    ("rate_limit", {"task_name": 5, "rate_limit": "5/s"}, "non-empty name"),
    ("pool_grow", {"n": 10**9}, "at most 256"),
    ("pool_grow", {"n": -1}, "at least 1"),
    ("pool_grow", {"n": 1.5}, "whole number"),
    ("pool_grow", {"n": "1e9"}, "whole number"),
    ("pool_grow", {"n": "9" * 400}, "at most 256"),
    ("pool_shrink", {"n": 10**9}, "at most 256"),
    ("pool_shrink", {"n": 5}, "below one slot"),
    ("add_consumer", {"queue": ""}, "non-empty"),
    ("add_consumer", {"queue": "q" * 300}, "longer than 255 bytes"),
    ("add_consumer", {"queue": "bad\x1bname"}, "control characters"),
    ("add_consumer", {"queue": ["q"]}, "non-empty name"),
    ("add_consumer", {"queue": "ok-name", "exchange": "ex\x00"}, "control characters"),
    ("add_consumer", {"queue": "ok-name", "exchange_type": "bogus"}, "exchange_type"),
    ("add_consumer", {"queue": "ok-name", "message_ttl": -5}, ">= 0"),
    ("add_consumer", {"queue": "ok-name", "max_length": "1e400"}, "must be a number"),
    ("add_consumer", {"queue": "ok-name", "expires": INF}, "must be a number"),
    ("add_consumer", {"queue": "ok-name", "no_ack": True}, "no_ack"),
    ("cancel_consumer", {"queue": ["a"]}, "non-empty name"),
    ("revoke", {"task_id": 5}, "TypeError("),
    ("revoke", {"task_id": ["x"] * 20_000}, "at most 10000"),
    ("revoke", {"task_id": ["ok\x1b[2J"]}, "not a task id"),
    ("revoke", {"task_id": ["a"], "terminate": True, "signal": -5}, "between 1 and"),
    ("revoke", {"task_id": ["a"], "terminate": True, "signal": 10**6}, "between 1 and"),
    ("revoke", {"task_id": ["a"], "terminate": True, "signal": "SIGNOPE"}, "unknown signal"),
    ("terminate", {"task_id": ["a"], "signal": 0}, "between 1 and"),
    ("revoke_by_stamped_headers", {"headers": ["novalue"]}, "key=value"),
    ("revoke_by_stamped_headers", {"headers": 5}, "TypeError("),
    ("revoke_by_stamped_headers", {"headers": {str(i): i for i in range(200)}}, "at most 100"),
    ("query_task", {"ids": [None]}, "TypeError("),
    ("query_task", {"ids": 5}, "TypeError("),
    ("memdump", {"samples": -1}, "at least 1"),
    ("memdump", {"samples": 10**9}, "at most"),
    ("registered", {"taskinfoitems": ["__class__.__init__"]}, "attribute names"),
    ("registered", {"taskinfoitems": 5}, "list of at most 20"),
    ("hello", {"from_node": 5}, "from_node"),
    ("conf", {"with_defaults": "maybe"}, "with_defaults"),
    ("election", {}, "TypeError("),
    ("autoscale", {"max": -1, "min": 10**9}, "Autoscale not enabled"),
    ("objgraph", {"num": -1}, "rror("),
    ("no_such_command", {}, "KeyError("),
]
# Commands whose every argument is fine whatever it holds (a flag read with bool(), a log text)
# or that take none: not in BAD.
TAKES_ANYTHING = {
    "active": "safe is read with bool()",
    "reserved": "safe is read with bool()",
    "scheduled": "safe is read with bool()",
    "shutdown": "msg is only logged (escaped)",
    "pool_restart": "always refused: not enabled",
    "memsample": "extra arguments are ignored",
}


@pytest.fixture(scope="module")
def live(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, pool="threads", concurrency=2) as w:
        yield w


@pytest.fixture(scope="module")
def ctl(broker_url: str) -> Iterator[ControlClient]:
    with ControlClient(BrokerSettings.from_url(broker_url, environ={})) as client:
        yield client


def _ask(ctl: ControlClient, w: Worker, method: str, arguments: dict[str, Any]) -> Any:
    replies = ctl.call(method, arguments, destination=[w.nodename], timeout=5)
    assert w.nodename in replies, f"{method}: no reply"
    return replies[w.nodename]


def test_the_table_covers_every_command_that_takes_arguments() -> None:
    takes = set()
    for name, cmd in registry.COMMANDS.items():
        if not cmd.handler.__module__.startswith("worker."):
            continue  # a command another test registered
        params = list(inspect.signature(cmd.handler).parameters.values())[1:]
        if params:
            takes.add(name)
    assert takes - {m for m, _, _ in BAD} - set(TAKES_ANYTHING) == set()


@pytest.mark.parametrize(("method", "arguments", "needle"), BAD)
def test_bad_control_arguments_are_refused_with_an_error_reply(
    live: Worker, ctl: ControlClient, method: str, arguments: dict[str, Any], needle: str
) -> None:
    before = _ask(ctl, live, "stats", {})["pool"]["max-concurrency"]
    reply = _ask(ctl, live, method, arguments)
    assert isinstance(reply, dict) and needle in str(reply.get("error", "")), reply
    assert _ask(ctl, live, "ping", {}) == {"ok": "pong"}
    assert _ask(ctl, live, "stats", {})["pool"]["max-concurrency"] == before
    consumer = live.consumer
    assert consumer.state.time_limits == {} and "peer.add" not in consumer.state.rate_limits
    assert set(consumer.link.queues) == set(live.config.queues)


def test_after_the_bad_commands_tasks_still_run_with_results(live: Worker, broker_url: str) -> None:
    with Client(BrokerSettings.from_url(broker_url, environ={})) as client:
        results = [
            client.send_task("peer.add", (i, 1), queue=live.config.queues[0]) for i in range(5)
        ]
        assert [r.get(timeout=20) for r in results] == [1, 2, 3, 4, 5]
    record_figures(
        "hostile_control",
        {"malformed_sent": len(BAD), "tasks_pushed": len(results), "tasks_lost": 0},
    )


# --------------------------------------------------------------------------- signed control

KEY = "k3y-" + "s" * 28


def test_a_keyed_worker_refuses_unsigned_and_wrongly_signed_commands(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMQPTOOL_CONTROL_KEY", KEY)
    with in_process_worker(broker_url) as w:
        node = w.nodename
        assert w.consumer.mailbox.verifier is not None
        signed = BrokerSettings.from_url(broker_url)  # the key from the environment
        unsigned = BrokerSettings.from_url(broker_url, environ={})
        monkeypatch.setenv("AMQPTOOL_CONTROL_KEY", "w" * 32)
        wrong = BrokerSettings.from_url(broker_url)
        with ControlClient(signed) as good:
            assert good.call("ping", destination=[node], timeout=5) == {node: {"ok": "pong"}}
        for settings, why in ((unsigned, "unsigned"), (wrong, "wrong signature")):
            with ControlClient(settings) as bad:
                replies = bad.call("pool_grow", {"n": 1}, destination=[node], timeout=2)
                bad.cast("shutdown", destination=[node])
            if settings is unsigned:  # the refusal is signed: an unkeyed client cannot vouch
                assert replies == {node: {"error": replies[node]["error"]}}
                assert why in replies[node]["error"]
            else:  # a client with another key refuses the worker's reply as wrongly signed
                assert replies == {} and "wrong signature" in bad.malformed[0]
        assert w.consumer.mailbox.refused == 4
        # the monitor's actions go through the same client: they are signed too
        assert BrokerControl(signed).call("ping", destination=[node], timeout=5) == {
            node: {"ok": "pong"}
        }
        assert not w.consumer.warm  # the unsigned shutdowns did nothing
        assert w.consumer.pool.concurrency == 2


def test_a_keyed_client_does_not_count_an_unsigned_rogue_reply(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process_worker(broker_url) as unkeyed:  # stands in for a rogue: it cannot sign
        monkeypatch.setenv("AMQPTOOL_CONTROL_KEY", KEY)
        with ControlClient(BrokerSettings.from_url(broker_url)) as client:
            replies = client.call("ping", destination=[unkeyed.nodename], timeout=1)
        assert replies == {}
        assert client.malformed and "unsigned" in client.malformed[0]


def test_the_control_cli_signs_with_a_key_file(
    broker_url: str, cli_env: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from tests.harness import ROOT

    key_file = tmp_path / "control.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv("AMQPTOOL_CONTROL_KEY_FILE", str(key_file))
    with in_process_worker(broker_url) as w:

        def control(*args: str) -> subprocess.CompletedProcess[str]:
            cmd = [sys.executable, "-m", "amqptool", "control", "-d", w.nodename, *args]
            return subprocess.run(
                cmd, env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=60
            )

        signed = control("ping", "--control-key-file", str(key_file))
        assert signed.returncode == 0 and f"->  {w.nodename}: OK" in signed.stdout
        unsigned = control("ping")
        assert unsigned.returncode == 1 and "unsigned" in unsigned.stdout
        for bad in (("-1", "-5"), ("1e400",), ("nan", "1")):  # the issue's own examples
            refused = control("time_limit", "peer.add", *bad, "--control-key-file", str(key_file))
            assert refused.returncode in (1, 2), refused
            assert "Traceback" not in refused.stderr
            assert refused.returncode == 2 or "ERROR" in refused.stdout
        assert w.consumer.state.time_limits == {}


def test_keyed_workers_mingle_with_signed_hellos(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMQPTOOL_CONTROL_KEY", KEY)
    with in_process_worker(broker_url) as first:
        with ControlClient(BrokerSettings.from_url(broker_url)) as client:
            client.call("revoke", {"task_id": "guard-revoked-id"}, destination=[first.nodename])
        with in_process_worker(broker_url, mingle=True) as second:
            assert "guard-revoked-id" in second.consumer.state.revoked.ids()
            assert first.consumer.mailbox.refused == 0
