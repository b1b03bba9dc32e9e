"""Routing from config: ``amqptool call --config/-A``, ``--exchange/--routing-key``, tasks that
call tasks inside our worker, and a route to a missing queue."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.transport.existing import inspect_queue
from tests.harness import ROOT, unique, wait_until
from tests.worker_support import connect, in_process_worker

PROJECT = ROOT / "tests" / "projects"


@pytest.fixture
def confdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _call(url: str, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": f"{cwd}:{PROJECT}:{ROOT}", "PATH": "/usr/bin:/bin", "AMQP_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "amqptool", "call", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_call_routes_by_the_config_module(fresh_vhost_url: str, confdir: Path) -> None:
    routed = unique("routed")
    (confdir / "routeconf.py").write_text(
        "from kombu import Exchange, Queue\n"
        f"task_queues = [Queue({routed!r}, Exchange({routed!r}), routing_key={routed!r},\n"
        "                    queue_arguments={'x-queue-type': 'quorum'})]\n"
        f"CELERY_ROUTES = {{'peer.*': {{'queue': {routed!r}}}}}\n"
    )
    sent = _call(fresh_vhost_url, confdir, "--config", "routeconf", "peer.add", "0", "0")
    assert sent.returncode == 0, sent.stderr
    with connect(fresh_vhost_url) as conn:  # declared by the client as task_queues says
        shape = inspect_queue(conn, routed)
        assert shape is not None and shape.queue_type == "quorum"
        assert conn.channel().queue_declare(routed, passive=True).message_count == 1
    with in_process_worker(fresh_vhost_url, queues=[routed]):
        argv = ["--config", "routeconf", "peer.add", "1", "2", "--wait", "--timeout", "20"]
        proc = _call(fresh_vhost_url, confdir, *argv)
    assert (proc.returncode, proc.stdout.strip()) == (0, "3"), proc.stderr


def test_call_with_exchange_and_routing_key(fresh_vhost_url: str, tmp_path: Path) -> None:
    queue = unique("topicq")
    with connect(fresh_vhost_url) as conn:
        ch = conn.channel()
        ch.exchange_declare("media", "topic", durable=True)
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, "media", "media.#")
    with in_process_worker(fresh_vhost_url, queues=[queue]):
        argv = ["peer.add", "2", "3", "--exchange", "media", "--routing-key", "media.video"]
        proc = _call(fresh_vhost_url, tmp_path, *argv, "--wait", "--timeout", "20")
    assert (proc.returncode, proc.stdout.strip()) == (0, "5"), proc.stderr


def test_a_route_to_a_missing_queue_is_refused(fresh_vhost_url: str, confdir: Path) -> None:
    (confdir / "strictconf.py").write_text(
        "task_create_missing_queues = False\ntask_routes = {'peer.add': 'nowhere'}\n"
    )
    proc = _call(fresh_vhost_url, confdir, "--config", "strictconf", "peer.add", "1", "2")
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: queue 'nowhere' missing from task_queues (add it")
    with connect(fresh_vhost_url) as conn:
        assert inspect_queue(conn, "nowhere") is None  # nothing declared, nothing sent


def test_a_task_called_from_a_task_follows_the_routes(fresh_vhost_url: str, confdir: Path) -> None:
    (confdir / "ourconf.py").write_text(
        "task_default_queue = 'work'\ntask_routes = {'ourtasks.where': {'queue': 'routed'}}\n"
    )
    env = {"PYTHONPATH": f"{confdir}:{PROJECT}:{ROOT}", "PATH": "/usr/bin:/bin"}
    env["AMQP_URL"] = fresh_vhost_url
    log = confdir / "worker.log"
    argv = ["worker", "-A", "ourtasks", "--config", "ourconf", "-Q", "work,routed"]
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "amqptool", *argv, "-P", "threads", "-c", "2"],
            stderr=out,
            env=env,
            cwd=confdir,
        )
    try:
        wait_until(lambda: "ready." in log.read_text(), 60, message="worker ready")
        proc = _call(fresh_vhost_url, confdir, "--config", "ourconf", "ourtasks.spawn", "--wait")
    finally:
        worker.terminate()
        worker.wait(30)
    assert (proc.returncode, proc.stdout.strip()) == (0, "routed"), proc.stderr + log.read_text()


def test_control_reads_the_broker_from_the_config_module(
    fresh_vhost_url: str, tmp_path: Path
) -> None:
    (tmp_path / "ctlconf.py").write_text(f"BROKER_URL = {fresh_vhost_url!r}\n")
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}  # no AMQP_URL
    with in_process_worker(fresh_vhost_url) as worker:
        proc = subprocess.run(
            [sys.executable, "-m", "amqptool", "control", "--config", "ctlconf", "ping"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert worker.config.nodename in proc.stdout
