"""Prometheus ``/metrics`` scraped while a real worker runs tasks: the headless exporter
(``--metrics ... --no-tui``) and the live view with ``--metrics``, parsed with
``prometheus_client``'s own parser; the counts match the tasks sent."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import wait_until
from tests.ui.test_monitor_terminal import monitor_in_terminal
from tests.worker_support import WorkerProcess, publish_task

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    return sum(
        value
        for have, value in samples.get(metric, [])
        if all(have.get(k) == v for k, v in labels.items())
    )


def send_work(url: str, queue: str, ok: int, failing: int) -> None:
    for i in range(ok):
        publish_task(url, queue, "peer.add", i, 1)
    for _ in range(failing):
        publish_task(url, queue, "peer.fail", "boom")


def queue_lengths(samples: Samples) -> list[tuple[dict[str, str], float]]:
    return samples.get("celery_queue_length", [])


def check_counts(samples: Samples, queue: str, ok: int, failing: int) -> None:
    host = "localhost"  # the host part of the worker's node name
    assert total(samples, "celery_task_received_total", name="peer.add", hostname=host) == ok
    assert total(samples, "celery_task_started_total", name="peer.add", hostname=host) == ok
    assert total(samples, "celery_task_succeeded_total", name="peer.add", hostname=host) == ok
    assert total(samples, "celery_task_failed_total", name="peer.fail", hostname=host) == failing
    failed = samples["celery_task_failed_total"]
    assert {labels["exception"] for labels, _ in failed} == {"ValueError"}
    assert total(samples, "celery_task_runtime_count", name="peer.add") == ok
    assert total(samples, "celery_task_runtime_bucket", name="peer.add", le="+Inf") == ok
    assert total(samples, "celery_task_runtime_sum", name="peer.add") > 0
    assert total(samples, "celery_worker_up", hostname=host) == 1
    assert "celery_worker_tasks_active" in samples
    assert samples["celery_queue_length"]
    assert any(labels["queue_name"] == queue for labels, _ in samples["celery_queue_length"])


def test_the_headless_exporter_counts_every_task_of_a_real_worker(
    fresh_vhost_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "AMQP_URL": fresh_vhost_url}
    log = tmp_path / "exporter.log"
    with (
        WorkerProcess(fresh_vhost_url, "-P", "threads", "-c", "2", "-E") as worker,
        log.open("w") as err,
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqptool", "monitor", "--metrics", "127.0.0.1:0", "--no-tui"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            wait_until(lambda: "serving http" in log.read_text(), 20, message="the exporter")
            url = log.read_text().split("serving ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
            # the exporter's event queue is there once a worker heartbeat is counted
            wait_until(
                lambda: total(scrape(url), "celery_worker_up", hostname="localhost") == 1,
                20,
                message="the worker's heartbeat",
            )
            send_work(fresh_vhost_url, worker.queue, 25, 3)

            def all_counted() -> bool:
                samples = scrape(url)
                return (
                    total(samples, "celery_task_succeeded_total", name="peer.add") == 25
                    and total(samples, "celery_task_failed_total") == 3
                    # the queue gauge comes from the poller, on its own interval
                    and any(q["queue_name"] == worker.queue for q, _ in queue_lengths(samples))
                )

            wait_until(all_counted, 30, message="every task and the queue in /metrics")
            check_counts(scrape(url), worker.queue, 25, 3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_live_view_serves_metrics_too(fresh_vhost_url: str, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AMQP_URL": fresh_vhost_url}
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with (
        WorkerProcess(fresh_vhost_url, "-P", "threads", "-c", "2", "-E") as worker,
        monitor_in_terminal(env, "--metrics", str(port)) as term,
    ):
        term.until(lambda t: "● connected" in t, "the monitor to connect")
        wait_until(
            lambda: total(scrape(url), "celery_worker_up", hostname="localhost") == 1,
            20,
            message="the worker's heartbeat",
        )
        send_work(fresh_vhost_url, worker.queue, 10, 2)
        wait_until(
            lambda: total(scrape(url), "celery_task_succeeded_total") == 10,
            30,
            message="the tasks in /metrics",
        )
        wait_until(lambda: total(scrape(url), "celery_task_failed_total") == 2, 10)
        wait_until(
            lambda: any(q["queue_name"] == worker.queue for q, _ in queue_lengths(scrape(url))),
            20,
            message="the worker's queue in /metrics",
        )
        check_counts(scrape(url), worker.queue, 10, 2)
        term.until(lambda t: "SUCCESS 10" in t, "the header's totals")
        term.write(b"q")
        assert term.proc.wait(20) == 0


def test_the_headless_exporter_exits_71_on_a_refused_login(cli_env: dict[str, str]) -> None:
    wrong = cli_env["AMQP_URL"].replace("guest:guest@", "guest:not-the-password@")
    assert wrong != cli_env["AMQP_URL"]
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", "--metrics", "127.0.0.1:0", "--no-tui"],
        env={**cli_env, "AMQP_URL": wrong},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 71, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: ")
    assert "not-the-password" not in proc.stderr
