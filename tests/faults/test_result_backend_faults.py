"""A result backend that is wrong at start or goes away while the worker runs.

- a bad ``--result-backend`` URL: one ``error:`` line, exit 2; an unreachable one: exit 70;
- a Redis that stops while tasks run: the worker retries storing, and if Redis comes back
  the result is there; if it does not, the loss is logged as an error with the task id.

The Redis here is our own ``redis-server`` on port 6393 (never the shared one).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.backends import backend_from_url
from tests.harness import rabbitmqctl, run_amqptool, unique, wait_until
from tests.worker_support import in_process_worker

PORT = 6393
URL = f"redis://127.0.0.1:{PORT}/0"


class OwnRedis:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is installed by scripts/ensure_services.py"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        backend = backend_from_url(URL)

        def up() -> bool:
            try:
                backend.check()
            except Exception:  # not up yet
                return False
            return True

        wait_until(up, timeout=20, message="our redis-server to answer")
        backend.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(20)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def worker_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    tasks, queue = "tests.peers.amqptool_tasks", unique("wq")
    return run_amqptool("worker", "-A", tasks, "-Q", queue, "-P", "solo", *args, env=env)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("bogus://nowhere", 2),
        ("redis://127.0.0.1:notaport/0", 2),
        ("redis://127.0.0.1:1/0", 70),
        ("db+postgresql://postgres@127.0.0.1:1/test", 70),
    ],
)
def test_a_bad_or_unreachable_backend_stops_the_worker_at_start(
    cli_env: dict[str, str], url: str, code: int
) -> None:
    proc = worker_cli(cli_env, "--result-backend", url)
    assert proc.returncode == code
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "Traceback" not in proc.stderr


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    loggers = [logging.getLogger(n) for n in ("amqptool.backends", "worker.pool.results")]
    for one in loggers:
        one.addHandler(handler)
    yield handler
    for one in loggers:
        one.removeHandler(handler)


def test_results_survive_a_backend_restart_and_a_lost_one_is_logged(
    broker_url: str, own_redis: OwnRedis, recorder: Recorder
) -> None:
    from amqptool.client import Client

    with (
        in_process_worker(broker_url, result_backend=URL) as w,
        Client(url=broker_url, backend=URL) as client,
    ):
        queue = w.config.queues[0]
        assert client.send_task("peer.add", (1, 2), queue=queue).get(timeout=20) == 3
        own_redis.stop()
        held = client.send_task("peer.add", (2, 2), queue=queue)
        wait_until(
            lambda: any(
                held.id in r.getMessage() and "retry" in r.getMessage() for r in recorder.records
            ),
            timeout=20,
            message="the worker to retry storing",
        )
        own_redis.start()
        assert held.get(timeout=20) == 4
        own_redis.stop()
        lost = client.send_task("peer.add", (3, 3), queue=queue)
        wait_until(
            lambda: any(
                r.name == "worker.pool.results"
                and lost.id in r.getMessage()
                and "NOT stored" in r.getMessage()
                for r in recorder.records
            ),
            timeout=30,
            message="the lost result to be logged with its task id",
        )
        own_redis.start()
        assert client.AsyncResult(lost.id).state == "PENDING"
        assert client.send_task("peer.add", (5, 5), queue=queue).get(timeout=20) == 10


def _unacked(url: str, queue: str) -> int:
    vhost = url.rsplit("/", 1)[1]
    for line in rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_unacknowledged"
    ).splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue}")


def test_an_acks_late_task_is_acked_only_after_its_batched_result_is_stored(
    broker_url: str, own_redis: OwnRedis, recorder: Recorder
) -> None:
    """The threads pool queues results for its writer: a task whose result waits for Redis
    stays unacked (the broker would redeliver it if the worker died) until it is stored."""
    from amqptool.client import Client

    with (
        in_process_worker(broker_url, result_backend=URL, concurrency=4) as w,
        Client(url=broker_url, backend=URL) as client,
    ):
        queue = w.config.queues[0]
        assert client.send_task("extra.slow_late", (0,), queue=queue).get(timeout=20) == 0
        wait_until(lambda: _unacked(broker_url, queue) == 0, timeout=20, message="the first ack")
        own_redis.stop()
        held = client.send_task("extra.slow_late", (0,), queue=queue)
        wait_until(
            lambda: any(
                held.id in r.getMessage() and "retry" in r.getMessage() for r in recorder.records
            ),
            timeout=20,
            message="the worker to retry storing",
        )
        assert _unacked(broker_url, queue) == 1  # ran, result not stored: not acked
        own_redis.start()
        assert held.get(timeout=20) == 0
        wait_until(lambda: _unacked(broker_url, queue) == 0, timeout=20, message="the ack")
        assert not any("NOT stored" in r.getMessage() for r in recorder.records)
