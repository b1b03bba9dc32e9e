"""Running as a service: log file, pid file, systemd notify (READY/STOPPING/WATCHDOG)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT, unique, wait_until

NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amqptool", "worker", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("flag", ["--logfile", "--pidfile", "--statedb"])
def test_a_file_in_a_missing_directory_is_refused_before_starting(
    flag: str, tmp_path: Path
) -> None:
    proc = _cli("-b", NOWHERE, "-A", "tests.peers.amqptool_tasks", flag, f"{tmp_path}/no/x")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {flag} {tmp_path}/no/x: directory {tmp_path}/no does not exist"
    ]


def test_a_pid_file_held_by_a_live_process_is_refused(tmp_path: Path) -> None:
    pidfile = tmp_path / "w.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # this test's process: alive
    proc = _cli("-b", NOWHERE, "-A", "tests.peers.amqptool_tasks", "--pidfile", str(pidfile))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --pidfile {pidfile}: process {os.getpid()} holds it")
    assert pidfile.read_text() == f"{os.getpid()}\n"  # left alone


def test_notify_socket_log_file_and_pid_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    received: list[str] = []

    def got(message: str) -> bool:
        with contextlib.suppress(TimeoutError):
            received.append(sock.recv(4096).decode())
        return any(message in m for m in received)

    env = dict(cli_env, NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
    logfile, pidfile = tmp_path / "worker.log", tmp_path / "worker.pid"
    argv = ["-A", "tests.peers.amqptool_tasks", "-Q", unique("svc"), "-P", "solo"]
    argv += ["--logfile", str(logfile), "--pidfile", str(pidfile), "-l", "INFO"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqptool", "worker", *argv],
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    try:
        wait_until(lambda: got("READY=1"), 60, message="READY=1")
        assert pidfile.read_text().strip() == str(proc.pid)
        wait_until(lambda: got("WATCHDOG=1"), 30, message="WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: got("STOPPING=1"), 30, message="STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        sock.close()
    assert f"MAINPID={proc.pid}" in received[0]
    assert "ready." in logfile.read_text()
    assert not pidfile.exists()  # removed on the way out


def test_log_lines_name_the_task_and_its_id(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Celery's lines: received, succeeded in, and get_task_logger's task[id] prefix."""
    from amqptool.client import Client

    queue, logfile = unique("logs"), tmp_path / "worker.log"
    env = dict(cli_env)
    env["PYTHONPATH"] = f"{ROOT / 'tests' / 'projects'}:{env['PYTHONPATH']}"
    argv = ["-A", "ourtasks", "-Q", queue, "-P", "threads", "-l", "INFO"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "amqptool", "worker", *argv, "--logfile", str(logfile)],
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    try:
        wait_until(lambda: logfile.exists() and "ready." in logfile.read_text(), 60)
        with Client(url=env["AMQP_URL"]) as client:
            result = client.send_task("ourtasks.logs", ("hello",), queue=queue)
            assert result.get(timeout=30) == "hello"
        tid = result.id
        wait_until(lambda: "succeeded in" in logfile.read_text(), 30, message="the success line")
    finally:
        proc.terminate()
        proc.wait(30)
    text = logfile.read_text()
    assert f"Task ourtasks.logs[{tid}] received" in text
    assert f"ourtasks.logs[{tid}]: logged hello" in text
    assert f"Task ourtasks.logs[{tid}] succeeded in " in text and "s: 'hello'" in text
