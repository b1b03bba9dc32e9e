"""Our own client (``amqptool.client``) and the task API's ``delay`` drive our worker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from amqptool.client import Client, signature
from tests.harness import ROOT
from tests.worker_support import in_process_worker
from worker import Worker

WAIT = 15


@pytest.fixture(scope="module")
def worker(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, concurrency=2) as w:
        yield w


@pytest.fixture
def client(broker_url: str) -> Iterator[Client]:
    with Client(url=broker_url) as c:
        yield c


def test_add_returns_4_and_failures_keep_their_type(client: Client, worker: Worker) -> None:
    q = worker.config.queues[0]
    assert client.send_task("peer.add", (2, 2), queue=q).get(timeout=WAIT) == 4
    failed = client.send_task("peer.fail", ("bad",), queue=q)
    with pytest.raises(ValueError, match="bad"):
        failed.get(timeout=WAIT)
    assert failed.failed() and "ValueError: bad" in (failed.traceback or "")


def test_kwargs_ignore_result_and_a_readable_link(client: Client, worker: Worker) -> None:
    q = worker.config.queues[0]
    echo = client.send_task("peer.echo", (1,), {"k": "v"}, queue=q)
    assert echo.get(timeout=WAIT) == {"args": [1], "kwargs": {"k": "v"}}
    assert client.send_task("peer.noop", queue=q, ignore_result=True).get(timeout=WAIT) is None
    cb_id = str(uuid.uuid4())
    link = signature("peer.mul", (10,), options={"task_id": cb_id, "reply_to": client.oid})
    assert client.send_task("peer.add", (1, 2), queue=q, link=link).get(timeout=WAIT) == 3
    assert client.AsyncResult(cb_id).get(timeout=WAIT) == 30


def test_task_delay_goes_through_the_default_client(
    worker: Worker, cli_env: dict[str, str]
) -> None:
    code = (
        "from tests.peers.amqptool_tasks import add\n"
        f"r = add.apply_async((20, 22), queue={worker.config.queues[0]!r})\n"
        "print(r.get(timeout=15))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "42"
