"""Celery's own command line commands OUR worker, run as users run it (``python -m worker``).

One worker subprocess for the module, with a unique node name, a task module that registers a
custom control command, and ``--disable-control shutdown,pool_shrink``. Against it:
``celery inspect ping``, ``celery inspect stats``, ``celery control rate_limit``,
``celery control revoke`` and ``celery status`` (each a ``python -m celery -b URL`` subprocess,
exit code 0 and the expected output); the custom command through ``amqptool control raw`` and
the ControlClient; the disabled commands refused with an error reply while the worker goes on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.control import ControlClient
from amqptool.settings import BrokerSettings
from tests.celery.test_control_cli import control
from tests.harness import ROOT, wait_until
from tests.worker_support import Collector, WorkerProcess, publish_task

pytestmark = pytest.mark.celery

FLOWER_KEYS = {"total", "broker", "pool", "pid", "prefetch_count", "rusage", "clock", "uptime"}


@pytest.fixture(scope="module")
def node(broker_url: str) -> Iterator[WorkerProcess]:
    wp = WorkerProcess(
        broker_url,
        "-P",
        "threads",
        "-c",
        "2",
        "-A",
        "tests.peers.control_tasks",
        "--disable-control",
        "shutdown,pool_shrink",
    )
    with wp:
        yield wp


@pytest.fixture
def ctl(broker_url: str) -> Iterator[ControlClient]:
    with ControlClient(BrokerSettings.from_url(broker_url)) as client:
        yield client


def celery(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-b", env["AMQP_URL"], *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def ask(ctl: ControlClient, wp: WorkerProcess, method: str, **arguments: Any) -> Any:
    replies = ctl.call(method, arguments, destination=[wp.nodename], timeout=5)
    assert wp.nodename in replies, f"{method}: no reply"
    return replies[wp.nodename]


# --------------------------------------------------------------------------- celery's CLI


def test_celery_inspect_ping_gets_pong(node: WorkerProcess, cli_env: dict[str, str]) -> None:
    r = celery("inspect", "ping", "-d", node.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"->  {node.nodename}: OK" in lines and "        pong" in lines
    assert "1 node online." in lines


def test_celery_inspect_stats_shows_every_key_flower_reads(
    node: WorkerProcess, cli_env: dict[str, str]
) -> None:
    r = celery("inspect", "stats", "--json", "-d", node.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)[node.nodename]
    assert set(stats) >= FLOWER_KEYS
    assert stats["pool"]["max-concurrency"] == 2 and stats["prefetch_count"] == 8
    assert node.proc is not None and stats["pid"] == node.proc.pid
    assert stats["broker"]["userid"] == "guest" and "password" not in stats["broker"]
    human = celery("inspect", "stats", "-d", node.nodename, env=cli_env)
    assert human.returncode == 0 and f"->  {node.nodename}: OK" in human.stdout


def test_celery_control_rate_limit_sets_the_limit_on_our_worker(
    node: WorkerProcess, cli_env: dict[str, str], ctl: ControlClient
) -> None:
    r = celery("control", "rate_limit", "peer.mul", "10/m", "-d", node.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        f"->  {node.nodename}: OK",
        "        new rate limit set successfully",
    ]
    assert "peer.mul [rate_limit=10/m]" in ask(ctl, node, "registered")


def test_celery_control_revoke_flags_the_id_on_our_worker(
    node: WorkerProcess, cli_env: dict[str, str], ctl: ControlClient
) -> None:
    task_id = str(uuid.uuid4())
    r = celery("control", "revoke", task_id, "-d", node.nodename, env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [
        f"->  {node.nodename}: OK",
        f"        tasks {{'{task_id}'}} flagged as revoked",
    ]
    assert task_id in ask(ctl, node, "revoked")


def test_celery_status_lists_our_worker_online(
    node: WorkerProcess, cli_env: dict[str, str]
) -> None:
    r = celery("status", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert f"->  {node.nodename}: OK" in r.stdout.splitlines()
    assert "online." in r.stdout.splitlines()[-1]


# --------------------------------------------------------------------------- custom command


def test_a_command_registered_in_the_task_module_answers_end_to_end(
    node: WorkerProcess, broker_url: str, cli_env: dict[str, str], ctl: ControlClient
) -> None:
    with Collector(broker_url) as replies:
        sent = publish_task(broker_url, node.queue, "peer.add", 1, 2, reply_to=replies.name)
        replies.wait_result(sent.id, "SUCCESS")
    r = control(
        "raw", "task_totals", "task_name=peer.add", "-d", node.nodename, "--json", env=cli_env
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {node.nodename: {"ok": 1}}
    assert ask(ctl, node, "task_totals")["peer.add"] == 1
    bad = control("raw", "task_totals", "task_name=peer.nope", "-d", node.nodename, env=cli_env)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[:2] == [
        f"->  {node.nodename}: ERROR",
        "        no task named 'peer.nope' here",
    ]


# --------------------------------------------------------------------------- --disable-control


def test_disabled_commands_are_refused_with_an_error_and_the_worker_goes_on(
    node: WorkerProcess, cli_env: dict[str, str], ctl: ControlClient
) -> None:
    refused = control("raw", "shutdown", "-d", node.nodename, "--json", env=cli_env)
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        node.nodename: {"error": "shutdown is disabled on this worker (--disable-control)"}
    }
    shrink = control("pool_shrink", "1", "-d", node.nodename, env=cli_env)
    assert shrink.returncode == 1
    assert shrink.stdout.splitlines()[:2] == [
        f"->  {node.nodename}: ERROR",
        "        pool_shrink is disabled on this worker (--disable-control)",
    ]
    cast = control("shutdown", "-d", node.nodename, env=cli_env)  # no reply asked: none comes
    assert cast.returncode == 0, cast.stderr
    assert ask(ctl, node, "ping") == {"ok": "pong"}
    assert ask(ctl, node, "stats")["pool"]["max-concurrency"] == 2
    assert node.proc is not None and node.proc.poll() is None
    assert "refused control command shutdown" in wait_until(
        lambda: node.output() if "refused control command shutdown" in node.output() else None,
        message="the refusal in the worker's log",
    )
