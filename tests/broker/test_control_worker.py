"""``amqptool control`` against OUR worker (``worker.Worker``), on the real broker.

The same checks as against the Celery peer (tests/celery/test_control_cli.py), plus: every command
of the table gets an answer (ok or an error reply, never silence or a crash), a round-trip while
every pool slot runs a long task, and a remote shutdown.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amqptool.client import Client
from amqptool.control import ControlClient
from amqptool.settings import BrokerSettings
from tests import harness
from tests.celery.test_control_cli import control
from worker import Worker

TASKS = "tests.peers.amqptool_tasks"


def start_worker(broker_url: str, **kw: Any) -> Worker:
    return Worker(
        TASKS,
        settings=broker_url,
        queues=[harness.unique("ourq")],
        nodename=f"{harness.unique('ours')}@localhost",
        **kw,
    ).start()


@pytest.fixture(scope="module")
def ours(broker_url: str) -> Iterator[Worker]:
    w = start_worker(broker_url, pool="threads", concurrency=2, events=True)
    try:
        yield w
    finally:
        w.stop()
        if not w.join(30):
            w.stop(cold=True)
            w.join(10)


def test_ping_our_worker_with_celerys_lines(cli_env: dict[str, str], ours: Worker) -> None:
    # How fast `ping -d` returns is measured against `celery inspect ping` in bench/bench_control.
    node = ours.nodename
    r = control("-t", "5", "ping", "-d", node, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"->  {node}: OK", "        pong", "", "1 node online."]
    j = control("--json", "ping", "-d", node, env=cli_env)
    assert json.loads(j.stdout) == {node: {"ok": "pong"}} and j.stderr == ""


def test_stats_of_our_worker_has_the_keys_flower_reads(
    cli_env: dict[str, str], ours: Worker
) -> None:
    r = control("--json", "stats", "-d", ours.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)[ours.nodename]
    for key in ("total", "broker", "pool", "pid", "prefetch_count", "rusage", "clock", "uptime"):
        assert key in stats, key
    assert isinstance(stats["total"], dict) and isinstance(stats["broker"], dict)


def test_rate_limit_on_our_worker_ok_and_unknown_task_exit_1(
    cli_env: dict[str, str], ours: Worker
) -> None:
    node = ours.nodename
    ok = control("rate_limit", "peer.mul", "1000/s", "-d", node, env=cli_env)
    assert ok.returncode == 0, ok.stderr
    assert "new rate limit set successfully" in ok.stdout
    bad = control("rate_limit", "peer.nope", "5/s", "-d", node, env=cli_env)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[:2] == [f"->  {node}: ERROR", "        unknown task"]


def test_revoke_on_our_worker_then_revoked_lists_the_ids(
    cli_env: dict[str, str], ours: Worker
) -> None:
    node = ours.nodename
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    r = control("revoke", *ids, "-d", node, env=cli_env)
    assert r.returncode == 0 and "flagged as revoked" in r.stdout
    for alias in ("revoked", "dump_revoked"):
        listed = json.loads(control(alias, "--json", "-d", node, env=cli_env).stdout)[node]
        assert set(ids) <= set(listed)


def test_registered_and_aliases_on_our_worker(cli_env: dict[str, str], ours: Worker) -> None:
    node = ours.nodename
    for name in ("registered", "dump_tasks"):
        r = control(name, "--json", "-d", node, env=cli_env)
        assert r.returncode == 0, r.stderr
        names = {entry.split(" ")[0] for entry in json.loads(r.stdout)[node]}
        assert {"peer.add", "peer.sleep"} <= names
    for alias in ("dump_active", "dump_reserved", "dump_schedule"):
        r = control(alias, "--json", "-d", node, env=cli_env)
        assert r.returncode == 0 and isinstance(json.loads(r.stdout)[node], list)


def test_an_unknown_method_gets_an_error_reply_exit_1_and_the_worker_goes_on(
    cli_env: dict[str, str], ours: Worker
) -> None:
    node = ours.nodename
    r = control("raw", "no_such_command", "-d", node, "--json", env=cli_env)
    assert r.returncode == 1
    assert "error" in json.loads(r.stdout)[node]
    assert control("ping", "-d", node, env=cli_env).returncode == 0


# (words, exit code): 0 an ok answer, 1 the error Celery's worker gives too (no autoscaler, no
# pool restarts, no objgraph); None: any answer (the scheduling tests check those outcomes).
EVERY_COMMAND: list[tuple[list[str], int | None]] = [
    (["ping"], 0),
    (["stats"], 0),
    (["active", "--safe"], 0),
    (["reserved"], 0),
    (["scheduled"], 0),
    (["revoked"], 0),
    (["registered", "rate_limit"], 0),
    (["query_task", str(uuid.uuid4())], 0),
    (["active_queues"], 0),
    (["conf"], 0),
    (["clock"], 0),
    (["hello"], 0),
    (["report"], 0),
    (["memsample"], 0),
    (["memdump"], 0),
    (["objgraph"], 1),
    (["rate_limit", "peer.mul", "1000/s"], 0),
    (["time_limit", "peer.mul", "300", "600"], None),
    (["revoke", str(uuid.uuid4()), "--terminate"], None),
    (["terminate", "SIGTERM", str(uuid.uuid4())], None),
    (["revoke_by_stamped_headers", "stamp=never"], None),
    (["add_consumer", "amqptool-ctl-extra"], 0),
    (["cancel_consumer", "amqptool-ctl-extra"], 0),
    (["pool_grow", "1"], 0),
    (["pool_shrink", "1"], 0),
    (["autoscale", "2", "1"], 1),
    (["pool_restart"], 1),
    (["enable_events"], 0),
    (["disable_events"], 0),
    (["enable_events"], 0),
    (["heartbeat"], 0),
]


def test_every_command_gets_its_answer_from_our_worker(
    ours: Worker, broker_url: str, cli_env: dict[str, str]
) -> None:
    node = ours.nodename
    wrong = []
    for words, expected in EVERY_COMMAND:
        r = control("--json", "-t", "3", "-d", node, *words, env=cli_env)
        answered = r.returncode in (0, 1) and node in json.loads(r.stdout or "{}")
        if not answered or expected not in (None, r.returncode):
            wrong.append((words[0], r.returncode, r.stdout.strip()[:200], r.stderr.strip()))
    assert wrong == []
    assert control("ping", "-d", node, env=cli_env).returncode == 0


def test_status_shows_our_worker(cli_env: dict[str, str], ours: Worker) -> None:
    r = control("status", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert f"->  {ours.nodename}: OK" in r.stdout.splitlines()


@pytest.mark.slow
def test_a_round_trip_while_every_pool_slot_runs_a_long_task(
    broker_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    busy = start_worker(broker_url, pool="threads", concurrency=2)
    settings = BrokerSettings.from_url(broker_url)
    release = tmp_path / "release"
    try:
        with Client(settings) as client, ControlClient(settings) as ctl:
            # Two tasks that run until the test says so: both slots stay busy through the ping.
            results = [
                client.send_task(
                    "extra.wait_for_file", (str(release),), queue=busy.config.queues[0]
                )
                for _ in range(2)
            ]
            harness.wait_until(
                lambda: len(ctl.call("active", destination=[busy.nodename])[busy.nodename]) == 2,
                timeout=15,
                message="both pool slots to run a long task",
            )
            r = control("-t", "5", "ping", "-d", busy.nodename, env=cli_env)
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines()[:2] == [f"->  {busy.nodename}: OK", "        pong"]
            # answered while both tasks were still running: neither has a result yet
            assert [res.ready() for res in results] == [False, False]
            release.touch()
            assert [res.get(timeout=30) for res in results] == [True, True]
    finally:
        release.touch()
        busy.stop()
        busy.join(30)


@pytest.mark.slow
def test_shutdown_stops_our_worker_warmly(broker_url: str, cli_env: dict[str, str]) -> None:
    doomed = start_worker(broker_url, pool="threads", concurrency=1)
    try:
        r = control("shutdown", "-d", doomed.nodename, env=cli_env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"shutdown sent to {doomed.nodename} (no reply expected)"
        assert doomed.join(20)
        assert doomed.exit_code == 0
    finally:
        doomed.stop()
        doomed.join(10)
