"""The password grep over long runs: a worker, the monitor (live, in a terminal, with --state;
and --dump --json), the control CLI and the task client, all logged in as a broker user whose
password is distinctive, through a cut connection, failing tasks and refused commands.

Everything they print, log or store (the worker's --statedb, the monitor's SQLite --state file,
the terminal transcript, dumps, JSON documents) is searched for the password in clear,
percent-encoded, base64 and hex form.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import harness
from tests.brokers import free_port
from tests.harness import unique, wait_until
from tests.load import ResultTally, push_tasks
from tests.passwords import SecretWitness
from tests.worker_support import close_connection_named

pytestmark = [pytest.mark.slow]

TASKS = "tests.peers.reliability_tasks"
BULK = 300
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])")


@pytest.fixture
def secret(broker_vhost: str, tmp_path: Path) -> Iterator[SecretWitness]:
    """A real broker user (session vhost) whose password is the distinctive one."""
    user = unique("amqptool-longrun")
    witness = SecretWitness(tmp_path, user=user)
    harness.rabbitmqctl("add_user", user, witness.password)
    try:
        harness.rabbitmqctl("set_permissions", "-p", broker_vhost, user, ".*", ".*", ".*")
        yield witness
    finally:
        harness.rabbitmqctl("delete_user", user, check=False)


class TerminalRun:
    """``amqptool ARGS`` in a pseudo-terminal (a real TTY for Textual); the transcript of
    everything it drew is kept in a file in the witness's scratch directory."""

    def __init__(self, witness: SecretWitness, args: list[str], name: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 130, 0, 0))
        env = witness.env({**os.environ, "TERM": "xterm-256color", "COLUMNS": "130"})
        self.master = master
        self.transcript = witness.workdir / f"{name}.tty"
        self.proc = subprocess.Popen(
            witness.command(args),
            cwd=witness.workdir,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        with self.transcript.open("wb") as out:
            while True:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not data:
                    return
                out.write(data)
                out.flush()

    def text(self) -> str:
        return self.transcript.read_bytes().decode(errors="replace")

    def screen(self) -> str:
        """The transcript without terminal escape sequences (roughly the text drawn)."""
        return ANSI.sub("", self.text())

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self, timeout: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._thread.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return code


def stored_uuids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return {row[0] for row in db.execute("SELECT uuid FROM tasks")}
        except sqlite3.Error:  # not created yet
            return set()


@pytest.mark.timeout(180)
def test_a_long_run_of_worker_monitor_control_and_client_never_shows_the_password(
    secret: SecretWitness, broker_vhost: str
) -> None:
    url = secret.url(vhost=broker_vhost)
    queue = unique("relia-secret")
    node = f"{unique('secret')}@localhost"
    statedb = secret.workdir / "state" / "worker.statedb"
    monitor_db = secret.workdir / "state" / "monitor.sqlite"
    worker = secret.popen(
        [
            *("worker", "-b", url, "-A", TASKS, "-Q", queue, "-n", node),
            *("-P", "prefork", "-c", "2", "-E", "-l", "DEBUG"),
            *("--statedb", str(statedb), "--disable-control", "shutdown"),
        ],
        name="worker",
    )
    dump = secret.popen(["monitor", "-b", url, "--dump", "--json", "--timeout", "60"], name="dump")
    live = TerminalRun(secret, ["monitor", "-b", url, "--state", str(monitor_db)], "monitor")
    worker_log = secret.workdir / "worker.stderr"
    runs: list[subprocess.CompletedProcess[str]] = []
    try:
        wait_until(lambda: "ready." in worker_log.read_text(), 30, message="the worker")
        short = node.split("@")[0]  # the workers table may cut the rest
        wait_until(lambda: short in live.screen(), 30, message="the monitor to show the worker")

        def call(*args: str) -> subprocess.CompletedProcess[str]:
            proc = secret.run(["call", "-b", url, "-Q", queue, "--json", *args])
            runs.append(proc)
            return proc

        ok = call("--wait", "--timeout", "20", "relia.mark", "7")
        assert ok.returncode == 0 and json.loads(ok.stdout)["result"] == 7, ok.stderr
        failed = call("--wait", "--timeout", "20", "relia.nap", "not-a-number")
        assert failed.returncode == 1 and "TypeError" in failed.stdout + failed.stderr
        with ResultTally(url) as tally:  # a stretch of ordinary traffic
            bulk = push_tasks(
                url, queue, "relia.mark", [(n,) for n in range(BULK)], reply_to=tally.queue
            )
            tally.wait_all(bulk, timeout=60)
        revoked_id = unique("revoked")
        for args in (["revoke", revoked_id], ["stats"], ["conf", "--with-defaults"], ["report"]):
            runs.append(secret.run(["control", "-b", url, "-d", node, "--json", *args]))
        runs.append(secret.run(["control", "-b", url, "-d", node, "raw", "shutdown"]))
        assert all(p.returncode in (0, 1) for p in runs[-5:]), [p.stderr for p in runs[-5:]]

        # A cut connection: the worker logs the loss and reconnects.
        close_connection_named(f"amqptool-worker {node}")
        wait_until(
            lambda: worker_log.read_text().count("Connected to") >= 2,
            30,
            message="the worker to reconnect",
        )
        late = call("--wait", "--timeout", "20", "relia.mark", "8")
        assert late.returncode == 0, late.stderr
        task_ids = {json.loads(p.stdout)["id"] for p in (ok, failed, late)} | set(bulk[-5:])

        wait_until(
            lambda: task_ids <= stored_uuids(monitor_db),
            30,
            message="the monitor to store the tasks in its --state file",
        )
        live.press(b"q")
        assert live.close() == 0, live.text()[-2000:]
    finally:
        for proc in (worker, dump):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        worker_code = worker.wait(30)
        dump.wait(30)
        if live.proc.poll() is None:
            live.proc.kill()
        live.close()
    assert worker_code == 0
    assert statedb.exists() and monitor_db.exists()
    assert revoked_id in statedb.read_text()
    assert node in (secret.workdir / "dump.stdout").read_text()
    log = worker_log.read_text()
    assert "Connection to broker lost" in log and "refused control command shutdown" in log
    scanned = secret.assert_clean(texts=[p.stdout + p.stderr for p in runs])
    assert scanned >= 6  # worker log, dump, terminal transcript, two state files (+ WAL)


def test_a_worker_that_cannot_log_in_or_connect_says_so_without_the_password(
    secret: SecretWitness, broker_vhost: str
) -> None:
    wrong = SecretWitness(secret.workdir / "wrong", user=secret.user)
    refused = wrong.run(["worker", "-b", wrong.url(vhost=broker_vhost), "-A", TASKS])
    assert refused.returncode == 71, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]  # after the banner: one error line
    assert last.startswith("error: ") and "credentials" in last
    assert "Traceback" not in refused.stderr
    wrong.assert_clean(refused)

    dead = secret.url("127.0.0.1", free_port())
    retrying = secret.popen(["worker", "-b", dead, "-A", TASKS, "-P", "solo"], name="retrying")
    log = secret.workdir / "retrying.stderr"
    try:
        wait_until(lambda: log.read_text().count("retrying in") >= 2, 20, message="retries")
    finally:
        retrying.send_signal(signal.SIGTERM)
        code = retrying.wait(10)  # SIGTERM ends the retries: the worker never got going
    assert code == 70
    lines = log.read_text().strip().splitlines()
    assert lines[-1].startswith("error: ") and "cannot connect" in lines[-1]
    assert f"{secret.user}:****@" in lines[-1]
    secret.assert_clean()
