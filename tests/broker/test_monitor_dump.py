"""``amqptool monitor --dump``: the line formats, and the real command in a subprocess."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from amqptool.monitor.dump import EventFormatter, format_json
from amqptool.settings import BrokerSettings
from tests import harness
from tests.broker.test_monitor_feed import OUR_TASKS, queue_rows, send_tasks

# Captured Celery 5.7 bodies (docs/protocol.md §3.5).
RECEIVED = {
    "hostname": "proto1@vm",
    "utcoffset": 0.0,
    "pid": 10629,
    "clock": 50,
    "uuid": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
    "name": "add-alias",
    "args": "(4, 5)",
    "kwargs": "{}",
    "root_id": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
    "parent_id": None,
    "retries": 0,
    "eta": None,
    "expires": None,
    "timestamp": 1795255157.5342858,
    "type": "task-received",
}
SUCCEEDED = {
    "hostname": "proto1@vm",
    "utcoffset": 0.0,
    "pid": 10629,
    "clock": 57,
    "uuid": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
    "result": "9",
    "runtime": 0.0054,
    "timestamp": 1795255160.5403135,
    "type": "task-succeeded",
}
HEARTBEAT = {
    "hostname": "proto1@vm",
    "utcoffset": 0.0,
    "pid": 10629,
    "clock": 207,
    "freq": 5,
    "sw_ident": "py-celery",
    "sw_ver": "5.7.0",
    "sw_sys": "Linux",
    "timestamp": 1795255239.4502115,
    "type": "worker-heartbeat",
}


def test_text_lines_read_like_celery_events_dump() -> None:
    fmt = EventFormatter()
    assert fmt.format(RECEIVED) == (
        "proto1@vm [2026-11-21 09:59:17.534286] task received: "
        "add-alias(12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8) args=(4, 5) kwargs={} "
        "clock=50, eta=None, expires=None, parent_id=None, pid=10629, retries=0, "
        "root_id=12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8, utcoffset=0.0"
    )
    # later events of the same task are named from the cache
    assert fmt.format(SUCCEEDED).startswith(
        "proto1@vm [2026-11-21 09:59:20.540313] task succeeded: add-alias(12fd4f3d"
    )
    assert fmt.format(HEARTBEAT) == (
        "proto1@vm [2026-11-21 10:00:39.450212] worker heartbeat: clock=207, freq=5, "
        "pid=10629, sw_ident=py-celery, sw_sys=Linux, sw_ver=5.7.0, utcoffset=0.0"
    )


def test_text_lines_survive_events_missing_every_optional_field() -> None:
    fmt = EventFormatter()
    assert fmt.format({"type": "task-started", "uuid": "u1"}) == "? [None] task started (u1)"
    assert fmt.format({"type": "custom-thing"}) == "? [None] custom thing"


def test_json_lines_keep_the_event_as_it_came() -> None:
    line = format_json(dict(RECEIVED, local_received=1795255157.6))
    assert "\n" not in line
    assert json.loads(line) == dict(RECEIVED, local_received=1795255157.6)


# --------------------------------------------------------------------------- the real command


@contextmanager
def dump_process(env: dict[str, str], *args: str) -> Iterator[DumpReader]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqptool", "monitor", "--dump", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    reader = DumpReader(proc)
    try:
        yield reader
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        reader.join()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


class DumpReader:
    """Collects a dump subprocess's stdout lines and stderr as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def join(self) -> None:
        for t in self._threads:
            t.join(10)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def wait_for(self, etype: str, host: str, timeout: float = 30.0) -> dict[str, Any]:
        found = harness.wait_until(
            lambda: [e for e in self.events() if e["type"] == etype and e.get("hostname") == host],
            timeout=timeout,
            message=f"{etype} from {host} in the dump",
        )
        return found[0]

    def queue(self) -> str:
        line = harness.wait_until(
            lambda: next((x for x in list(self.err) if "listening" in x), None),
            timeout=15,
            message="the dump to start listening",
        )
        match = re.search(r"queue (celeryev\.[0-9a-f-]+)", line)
        assert match, line
        return match.group(1)


def check_a_worker_life_in_the_dump(reader: DumpReader, node: str, ok_id: str, bad_id: str) -> None:
    online = reader.wait_for("worker-online", node)
    assert {"freq", "sw_ident", "sw_ver", "timestamp", "local_received"} <= set(online)
    reader.wait_for("worker-heartbeat", node)
    for etype in ("task-received", "task-started", "task-succeeded", "task-failed"):
        harness.wait_until(
            lambda t=etype: any(
                e["type"] == t and e.get("uuid") in (ok_id, bad_id) for e in reader.events()
            ),
            timeout=30,
            message=f"{etype} in the dump",
        )
    succeeded = [e for e in reader.events() if e["type"] == "task-succeeded"]
    assert any(e["uuid"] == ok_id and e["result"] == "3" for e in succeeded)


def stop_dump_like_a_user(reader: DumpReader, vhost: str, queue: str) -> None:
    reader.proc.send_signal(signal.SIGINT)
    assert reader.proc.wait(15) == 130
    assert queue not in queue_rows(vhost)  # no litter


@pytest.mark.celery
@pytest.mark.slow
def test_dump_json_shows_a_real_celery_worker_from_online_to_offline(
    broker_url: str, cli_env: dict[str, str]
) -> None:
    with dump_process(cli_env, "--json") as reader:
        queue = reader.queue()
        peer = harness.CeleryPeer(broker_url).start()
        try:
            ok_id, bad_id = send_tasks(broker_url, peer.queue)
            check_a_worker_life_in_the_dump(reader, peer.nodename, ok_id, bad_id)
        finally:
            peer.stop()
        reader.wait_for("worker-offline", peer.nodename)
        stop_dump_like_a_user(reader, BrokerSettings.from_url(broker_url).primary.vhost, queue)


@pytest.mark.celery
def test_dump_json_shows_our_worker_from_online_to_offline(
    broker_url: str, cli_env: dict[str, str]
) -> None:
    from worker import Worker

    with dump_process(cli_env, "--json") as reader:
        queue = reader.queue()
        ours = Worker(
            OUR_TASKS,
            settings=broker_url,
            queues=[harness.unique("ourq")],
            nodename=f"{harness.unique('ours')}@localhost",
            pool="threads",
            concurrency=2,
            events=True,
        ).start()
        try:
            ok_id, bad_id = send_tasks(broker_url, ours.config.queues[0])
            check_a_worker_life_in_the_dump(reader, ours.nodename, ok_id, bad_id)
        finally:
            ours.stop()
            ours.join(30)
        reader.wait_for("worker-offline", ours.nodename)
        stop_dump_like_a_user(reader, BrokerSettings.from_url(broker_url).primary.vhost, queue)


@pytest.mark.celery
def test_dump_count_stops_after_n_lines_of_text(
    cli_env: dict[str, str], celery_peer: harness.CeleryPeer
) -> None:
    # The heartbeat cast on start guarantees events from the running peer at once.
    with dump_process(cli_env, "--count", "1", "--timeout", "20") as reader:
        assert reader.proc.wait(25) == 0
        reader.join()
    assert len(reader.lines) == 1
    assert re.match(r"^\S+@\S+ \[\d{4}-\d\d-\d\d [\d:.]+\] worker heartbeat: ", reader.lines[0])
    assert not any(line.startswith("error") for line in reader.err)


def test_dump_exits_69_when_count_events_do_not_arrive_in_time(fresh_vhost_url: str) -> None:
    env = harness_env(fresh_vhost_url)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amqptool",
            "monitor",
            "--dump",
            "--json",
            "--count",
            "1",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 69
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("error: only 0 of 1 event(s) arrived within")


def test_dump_with_only_a_timeout_runs_that_long_and_exits_0(fresh_vhost_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", "--dump", "--json", "--timeout", "1"],
        capture_output=True,
        text=True,
        env=harness_env(fresh_vhost_url),
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout == ""  # no worker in a fresh vhost: no events
    assert "listening for events" in proc.stderr


def test_dump_without_a_broker_is_one_line_and_exit_70(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, AMQP_URL="amqp://guest:sekrit@127.0.0.1:1/")
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", "--dump", "--timeout", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 70
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in proc.stderr
    assert "sekrit" not in proc.stderr


@pytest.mark.parametrize("flag", [["--json"], ["--count", "3"], ["--timeout", "2"]])
def test_dump_options_without_dump_are_a_usage_error(
    cli_env: dict[str, str], flag: list[str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amqptool", "monitor", *flag],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --json, --count and --timeout go with --dump"


def harness_env(url: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["AMQP_URL"] = url
    env["PYTHONPATH"] = str(harness.ROOT)
    env.pop("CELERY_BROKER_URL", None)
    return env
