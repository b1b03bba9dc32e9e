"""Settings acted on: worker_disable_rate_limits (worker), result_expires (client)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from amqptool.client import Client
from tests.dropin_support import clean_env, worker_running
from tests.harness import rabbitmqctl, unique


def test_worker_disable_rate_limits(fresh_vhost_url: str, tmp_path: Path) -> None:
    """``ourtasks.slowly`` allows one run an hour; with the setting on, all three run now."""
    (tmp_path / "norates.py").write_text("worker_disable_rate_limits = True\n")
    queue = unique("rates")
    env = clean_env(tmp_path, url=fresh_vhost_url)
    argv = ["-A", "ourtasks", "--config", "norates", "-Q", queue, "-P", "threads"]
    with worker_running(*argv, env=env, cwd=tmp_path), Client(url=fresh_vhost_url) as client:
        results = [client.send_task("ourtasks.slowly", (n,), queue=queue) for n in range(3)]
        assert [r.get(timeout=30) for r in results] == [0, 1, 2]


def test_result_expires_is_the_result_queues_expiry(fresh_vhost_url: str) -> None:
    with Client(url=fresh_vhost_url, config={"result_expires": timedelta(minutes=5)}) as client:
        client.send_task("nobody.listens", queue=unique("void"))
        vhost = fresh_vhost_url.rsplit("/", 1)[1]
        rows = rabbitmqctl("list_queues", "-p", vhost, "name", "arguments")
        line = next(row for row in rows.splitlines() if row.startswith(client.oid))
    assert '{"x-expires",300000}' in line
