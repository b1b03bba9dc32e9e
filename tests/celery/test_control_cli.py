"""``amqptool control`` as a user runs it, against a real Celery 5.7 worker on the real broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests import harness
from tests.harness import ROOT

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1//"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def control(*args: str, env: dict[str, str] | None = None) -> Result:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "control", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


# ---------------------------------------------------------------- ping, early exit


@pytest.mark.celery
def test_ping_a_named_worker_prints_celerys_lines_and_exits_0(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control("ping", "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"->  {node}: OK", "        pong", "", "1 node online."]
    assert r.stderr == ""


@pytest.mark.celery
def test_ping_with_destination_returns_well_before_the_timeout(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    # -t 120 beyond the 60 s the subprocess may run: waiting for the timeout fails the test
    r = control("-t", "120", "ping", "-d", celery_peer.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr


@pytest.mark.celery
def test_json_is_one_document_of_node_to_reply_and_nothing_else(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control("--json", "ping", "-d", node, env=cli_env)
    assert r.returncode == 0
    assert json.loads(r.stdout) == {node: {"ok": "pong"}}
    assert r.stderr == ""


def test_nobody_replying_exits_69_after_about_the_timeout(cli_env: dict[str, str]) -> None:
    r = control("ping", "-d", "nobody@nowhere", "-t", "0.5", env=cli_env)
    assert r.returncode == 69
    assert r.stderr.strip() == "error: no nodes replied within 0.5s"
    assert r.stdout == ""
    # waiting the whole timeout for a first reply is the collector's rule, on a fake clock
    # (test_control_commands.py); no wall-clock assertion here
    j = control("--json", "ping", "-d", "nobody@nowhere", "-t", "0.3", env=cli_env)
    assert j.returncode == 69 and json.loads(j.stdout) == {}


@pytest.mark.celery
def test_a_partly_answered_destination_list_names_the_silent_nodes(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control("ping", "-d", f"{node},ghost@nowhere", "-t", "0.5", env=cli_env)
    assert r.returncode == 0
    assert "1 node online." in r.stdout
    assert "no reply from: ghost@nowhere" in r.stderr


@pytest.mark.celery
def test_pattern_selects_nodes_by_glob_or_regex(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    prefix = node.split("-")[0]
    r = control("ping", "--pattern", f"{prefix}-*", "--json", env=cli_env)
    assert r.returncode == 0 and node in json.loads(r.stdout)
    r = control(
        "ping", "--pattern", "^nothing-like-this", "--matcher", "pcre", "-t", "0.3", env=cli_env
    )
    assert r.returncode == 69
    r = control("ping", "--pattern", re.escape(node), "--matcher", "pcre", "--json", env=cli_env)
    assert json.loads(r.stdout) == {node: {"ok": "pong"}}


# ---------------------------------------------------------------- the interop commands


@pytest.mark.celery
def test_stats_has_the_keys_flower_reads(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control("stats", "--json", "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)[node]
    for key in ("total", "broker", "pool", "pid", "prefetch_count", "rusage", "clock", "uptime"):
        assert key in stats, key
    assert "password" not in json.dumps(stats["broker"])
    human = control("stats", "-d", node, env=cli_env)
    assert f"->  {node}: OK" in human.stdout and '"prefetch_count"' in human.stdout


@pytest.mark.celery
def test_rate_limit_is_ok_for_a_known_task_and_exit_1_for_an_unknown_one(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    ok = control("rate_limit", "peer.mul", "1000/s", "-d", node, env=cli_env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[:2] == [
        f"->  {node}: OK",
        "        new rate limit set successfully",
    ]
    bad = control("rate_limit", "peer.nope", "5/s", "-d", node, env=cli_env)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[:2] == [f"->  {node}: ERROR", "        unknown task"]
    assert bad.stderr.strip() == f"error: 1 of 1 node replied with an error: {node}"
    as_json = control("--json", "rate_limit", "peer.nope", "5/s", "-d", node, env=cli_env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {node: {"error": "unknown task"}}


@pytest.mark.celery
def test_revoke_flags_ids_that_revoked_then_lists(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    r = control("revoke", *ids, "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert "flagged as revoked" in r.stdout and all(i in r.stdout for i in ids)
    listed = json.loads(control("revoked", "--json", "-d", node, env=cli_env).stdout)[node]
    assert set(ids) <= set(listed)
    term = control("revoke", ids[0], "--terminate", "--signal", "SIGKILL", "-d", node, env=cli_env)
    assert term.returncode == 0 and "terminate: tasks unknown" in term.stdout
    term = control("terminate", "SIGTERM", ids[1], "-d", node, env=cli_env)
    assert term.returncode == 0 and "terminate: tasks unknown" in term.stdout


@pytest.mark.celery
def test_registered_lists_the_peer_tasks(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control("registered", "-d", node, env=cli_env)
    assert r.returncode == 0
    assert "    * peer.add" in r.stdout.splitlines()
    listed = json.loads(control("--json", "registered", "-d", node, env=cli_env).stdout)[node]
    assert {"peer.add", "peer.sleep", "peer.fail"} <= set(listed)


@pytest.mark.parametrize(
    "words",
    [
        ["dump_schedule"],
        ["dump_reserved"],
        ["dump_active"],
        ["dump_tasks"],
        ["dump_revoked"],
        ["dump_conf"],
    ],
)
@pytest.mark.celery
def test_legacy_aliases_celerys_cli_rejects_work(
    words: list[str], cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename
    r = control(*words, "--json", "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert node in json.loads(r.stdout)


@pytest.mark.celery
def test_the_other_inspect_and_control_commands_get_celerys_replies(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    node = celery_peer.nodename

    def reply(*words: str) -> Any:
        r = control("--json", "-d", node, *words, env=cli_env)
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)[node]

    assert reply("clock")["clock"] > 0
    assert reply("active", "--safe") == []
    assert reply("scheduled") == [] and reply("reserved") == []
    assert reply("query_task", str(uuid.uuid4())) == {}
    assert reply("time_limit", "peer.mul", "300", "600") == {"ok": "time limits set successfully"}
    assert reply("heartbeat") is None
    assert reply("enable_events") == {"ok": "task events already enabled"}
    assert "celery" in reply("report")["ok"]
    assert "broker_url" in reply("conf")
    assert set(reply("hello")) == {"revoked", "clock"}
    queues = reply("active_queues")
    assert [q["name"] for q in queues] == [celery_peer.queue]
    extra = harness.unique("extra-q")
    assert reply("add_consumer", extra) == {"ok": f"add consumer {extra}"}
    assert reply("cancel_consumer", extra) == {"ok": f"no longer consuming from {extra}"}
    assert reply("autoscale", "3", "1") == {"error": "ValueError('Autoscale not enabled')"}
    assert reply("raw", "rate_limit", "task_name=peer.mul", "rate_limit=1000/s") == {
        "ok": "new rate limit set successfully"
    }


# ---------------------------------------------------------------- status, shutdown


@pytest.mark.celery
def test_status_lists_who_is_online(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    # that the broadcast stops after a short silence is the collector's rule, shown on a fake
    # clock in tests/unit/test_control_commands.py (a wall-clock bound here would test the load)
    r = control("status", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert f"->  {celery_peer.nodename}: OK" in r.stdout.splitlines()
    assert "pong" not in r.stdout
    assert re.search(r"^\d+ nodes? online\.$", r.stdout.splitlines()[-1])


@pytest.mark.celery
@pytest.mark.slow
def test_shutdown_is_cast_and_the_worker_exits(
    broker_url: str, cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    with harness.CeleryPeer(broker_url, events=False) as doomed:
        r = control("shutdown", "-d", doomed.nodename, env=cli_env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"shutdown sent to {doomed.nodename} (no reply expected)"
        harness.wait_until(
            lambda: doomed.proc is not None and doomed.proc.poll() is not None,
            timeout=30,
            message="the worker to shut down",
        )
    alive = control("ping", "-d", celery_peer.nodename, env=cli_env)
    assert alive.returncode == 0  # only the named node went down


# ---------------------------------------------------------------- usage, no broker needed


def test_an_unknown_command_is_a_usage_error_with_a_suggestion_and_no_broker_contact() -> None:
    r = control("-b", UNREACHABLE, "pnig")
    assert r.returncode == 2
    assert r.stderr.startswith("error: unknown control command 'pnig'")
    assert "did you mean 'ping'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["rate_limit", "peer.add"], "rate_limit: missing RATE"),
        (["pool_grow", "many"], "N must be an integer"),
        (["ping", "--terminate"], "unrecognized arguments: --terminate"),
        ([], "missing COMMAND"),
        (["ping", "-t", "0"], "-t/--timeout must be a positive number"),
        (["ping", "--matcher", "pcre"], "--matcher needs --pattern"),
    ],
)
def test_bad_arguments_exit_2_before_any_broker_contact(words: list[str], message: str) -> None:
    r = control("-b", UNREACHABLE, *words)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.startswith("error: ")


def test_commands_lists_signatures_without_a_broker() -> None:
    r = control("-b", UNREACHABLE, "commands")
    assert r.returncode == 0, r.stderr
    for line in (
        "rate_limit TASK RATE",
        "revoke ID [ID ...] [--terminate] [--signal SIG]",
        "time_limit TASK SOFT [HARD]",
        "add_consumer QUEUE [EXCHANGE [TYPE [ROUTING_KEY]]]",
    ):
        assert line in r.stdout
    listing = json.loads(control("-b", UNREACHABLE, "commands", "--json").stdout)
    assert {"name": "shutdown", "reply": False}.items() <= next(
        c for c in listing if c["name"] == "shutdown"
    ).items()


def test_an_unreachable_broker_exits_70_with_one_line() -> None:
    r = control("-b", UNREACHABLE, "ping")
    assert r.returncode == 70
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")


@pytest.mark.celery
def test_control_imports_no_ui_toolkit_celery_or_user_module(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    code = (
        "import sys\n"
        "from amqptool.cli import main\n"
        f"rc = main(['control', 'ping', '-d', {celery_peer.nodename!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'prompt_toolkit', 'celery', 'kombu', 'tests'))\n"
        "print('RESULT', rc, bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert "RESULT 0 []" in proc.stdout, proc.stdout + proc.stderr
