"""Routing from config: ``amqptool call --config/-A``, ``--exchange/--routing-key``, tasks that
call tasks inside our worker, and a route to a missing queue."""

from __future__ import annotations

import subprocess
from pathlib import Path

from amqptool.transport.existing import inspect_queue
from tests.dropin_support import amqptool, clean_env, worker_running
from tests.harness import unique
from tests.worker_support import connect, in_process_worker


def _call(url: str, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return amqptool("call", *argv, env=clean_env(cwd, url=url), cwd=cwd)


def test_call_routes_by_the_config_module(fresh_vhost_url: str, tmp_path: Path) -> None:
    routed = unique("routed")
    (tmp_path / "routeconf.py").write_text(
        "from kombu import Exchange, Queue\n"
        f"task_queues = [Queue({routed!r}, Exchange({routed!r}), routing_key={routed!r},\n"
        "                    queue_arguments={'x-queue-type': 'quorum'})]\n"
        f"CELERY_ROUTES = {{'peer.*': {{'queue': {routed!r}}}}}\n"
    )
    sent = _call(fresh_vhost_url, tmp_path, "--config", "routeconf", "peer.add", "0", "0")
    assert sent.returncode == 0, sent.stderr
    with connect(fresh_vhost_url) as conn:  # declared by the client as task_queues says
        shape = inspect_queue(conn, routed)
        assert shape is not None and shape.queue_type == "quorum"
        assert conn.channel().queue_declare(routed, passive=True).message_count == 1
    with in_process_worker(fresh_vhost_url, queues=[routed]):
        argv = ["--config", "routeconf", "peer.add", "1", "2", "--wait", "--timeout", "20"]
        proc = _call(fresh_vhost_url, tmp_path, *argv)
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


def test_a_route_to_a_missing_queue_is_refused(fresh_vhost_url: str, tmp_path: Path) -> None:
    (tmp_path / "strictconf.py").write_text(
        "task_create_missing_queues = False\ntask_routes = {'peer.add': 'nowhere'}\n"
    )
    proc = _call(fresh_vhost_url, tmp_path, "--config", "strictconf", "peer.add", "1", "2")
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: queue 'nowhere' missing from task_queues (add it")
    with connect(fresh_vhost_url) as conn:
        assert inspect_queue(conn, "nowhere") is None  # nothing declared, nothing sent


def test_a_task_called_from_a_task_follows_the_routes(fresh_vhost_url: str, tmp_path: Path) -> None:
    (tmp_path / "ourconf.py").write_text(
        "task_default_queue = 'work'\ntask_routes = {'ourtasks.where': {'queue': 'routed'}}\n"
    )
    env = clean_env(tmp_path, url=fresh_vhost_url)
    argv = ["-A", "ourtasks", "--config", "ourconf", "-Q", "work,routed", "-P", "threads"]
    with worker_running(*argv, "-c", "2", env=env, cwd=tmp_path) as log:
        proc = _call(fresh_vhost_url, tmp_path, "--config", "ourconf", "ourtasks.spawn", "--wait")
    assert (proc.returncode, proc.stdout.strip()) == (0, "routed"), proc.stderr + log.read_text()


def test_control_reads_the_broker_from_the_config_module(
    fresh_vhost_url: str, tmp_path: Path
) -> None:
    (tmp_path / "ctlconf.py").write_text(f"BROKER_URL = {fresh_vhost_url!r}\n")
    env = clean_env(tmp_path)  # no AMQP_URL
    with in_process_worker(fresh_vhost_url) as worker:
        proc = amqptool("control", "--config", "ctlconf", "ping", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert worker.config.nodename in proc.stdout


def test_call_with_a_celery_app_routes_by_its_task_routes(
    fresh_vhost_url: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path)
    env["PROJ_BROKER_URL"] = fresh_vhost_url  # the app's broker_url; no AMQP_URL
    with worker_running("-A", "proj", "-P", "threads", env=env, cwd=tmp_path):
        proc = amqptool(
            "call", "-A", "proj", "proj.tasks.where_am_i", "--wait", env=env, cwd=tmp_path
        )
    assert (proc.returncode, proc.stdout.strip()) == (0, "proj.quorum"), proc.stderr


def test_control_with_a_celery_app_or_a_config_after_the_command(
    fresh_vhost_url: str, tmp_path: Path
) -> None:
    (tmp_path / "ctlconf2.py").write_text(f"broker_url = {fresh_vhost_url!r}\n")
    env = clean_env(tmp_path)
    env["PROJ_BROKER_URL"] = fresh_vhost_url  # the app's broker_url; no AMQP_URL
    with in_process_worker(fresh_vhost_url) as worker:
        by_app = amqptool("control", "-A", "proj", "ping", env=env, cwd=tmp_path)
        by_config = amqptool("control", "ping", "--config", "ctlconf2", env=env, cwd=tmp_path)
    for proc in (by_app, by_config):
        assert proc.returncode == 0, proc.stderr
        assert worker.config.nodename in proc.stdout
