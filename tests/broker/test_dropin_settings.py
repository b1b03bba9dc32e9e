"""Settings acted on: worker_disable_rate_limits (worker), result_expires (client)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from amqptool.client import Client
from tests.harness import ROOT, rabbitmqctl, unique, wait_until

PROJECT = ROOT / "tests" / "projects"


def test_worker_disable_rate_limits(fresh_vhost_url: str, tmp_path: Path) -> None:
    """``ourtasks.slowly`` allows one run an hour; with the setting on, all three run now."""
    (tmp_path / "norates.py").write_text("worker_disable_rate_limits = True\n")
    queue = unique("rates")
    env = {"PYTHONPATH": f"{tmp_path}:{PROJECT}:{ROOT}", "PATH": "/usr/bin:/bin"}
    env["AMQP_URL"] = fresh_vhost_url
    log = tmp_path / "worker.log"
    argv = ["worker", "-A", "ourtasks", "--config", "norates", "-Q", queue, "-P", "threads"]
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "amqptool", *argv], stderr=out, env=env, cwd=tmp_path
        )
    try:
        wait_until(lambda: "ready." in log.read_text(), 60, message="worker ready")
        with Client(url=fresh_vhost_url) as client:
            results = [client.send_task("ourtasks.slowly", (n,), queue=queue) for n in range(3)]
            assert [r.get(timeout=30) for r in results] == [0, 1, 2]
    finally:
        worker.terminate()
        worker.wait(30)


def test_result_expires_is_the_result_queues_expiry(fresh_vhost_url: str) -> None:
    with Client(url=fresh_vhost_url, config={"result_expires": timedelta(minutes=5)}) as client:
        client.send_task("nobody.listens", queue=unique("void"))
        vhost = fresh_vhost_url.rsplit("/", 1)[1]
        rows = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")
        line = next(row for row in rows.splitlines() if row.startswith(client.oid))
    assert '{"x-expires",300000}' in line
