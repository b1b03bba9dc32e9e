"""Leaks: the broker URL from a file or the environment keeps the password out of ``ps``; files
that hold task data or message bodies are private (0600), wider existing ones are tightened."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.monitor.store import TaskStore
from tests import harness
from tests.harness import unique, wait_until
from tests.passwords import SecretWitness
from tests.worker_support import WorkerProcess


@pytest.fixture
def secret(broker_vhost: str, tmp_path: Path) -> Iterator[SecretWitness]:
    """A broker user on the session vhost whose password is distinctive."""
    witness = SecretWitness(tmp_path / "witness", user=unique("amqptool-guard"))
    harness.rabbitmqctl("add_user", witness.user, witness.password)
    try:
        harness.rabbitmqctl("set_permissions", "-p", broker_vhost, witness.user, ".*", ".*", ".*")
        yield witness
    finally:
        harness.rabbitmqctl("delete_user", witness.user, check=False)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _ps_lines() -> str:
    return subprocess.run(["ps", "axww", "-o", "pid,args"], capture_output=True, text=True).stdout


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_worker_given_its_url_by_file_or_env_shows_no_password_and_keeps_files_0600(
    secret: SecretWitness,
    broker_vhost: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url_file = tmp_path / "broker.url"
    url_file.write_text(secret.url(vhost=broker_vhost) + "\n")
    url_file.chmod(0o600)
    statedb, schedule = tmp_path / "state.json", tmp_path / "beat.json"
    monkeypatch.setenv("SCHED_TICK_EVERY", "0.5")
    common = [
        *("-A", "tests.peers.sched_tasks", "-P", "threads", "--statedb", str(statedb)),
        *("-B", "-s", str(schedule)),
    ]
    queue = unique("guardq")
    # 1. --broker-file; 2. $AMQP_URL_FILE (the files are then made 0644 before the restart)
    for how in ("option", "env"):
        if how == "option":
            worker = WorkerProcess("", "--broker-file", str(url_file), *common, queue=queue)
        else:
            monkeypatch.setenv("AMQP_URL_FILE", str(url_file))
            statedb.chmod(0o644)
            schedule.chmod(0o644)
            worker = WorkerProcess("", *common, queue=queue)
        with worker:
            assert worker.proc is not None
            pid = worker.proc.pid
            assert secret.password.encode() not in _cmdline(pid)
            assert secret.password not in _ps_lines()
            assert secret.user in worker.output()  # it did log in as that user
            if how == "env":  # the wider files were tightened when loaded, not at the next save
                assert _mode(statedb) == 0o600 and _mode(schedule) == 0o600
                assert worker.output().count("was wider than 600; tightened") == 2
            wait_until(
                lambda: schedule.exists() and _mode(schedule) == 0o600,
                20,
                message="the beat schedule to be saved private",
            )
        assert _mode(statedb) == 0o600, how
        assert _mode(schedule) == 0o600, how
        assert secret.password not in worker.output()


def test_the_monitor_state_file_is_created_0600_and_a_wider_one_is_tightened(
    tmp_path: Path,
) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.sqlite"
        with TaskStore(fresh) as store:
            assert store.mode_note == ""
        assert _mode(fresh) == 0o600
        for side in ("-wal", "-shm"):
            extra = Path(str(fresh) + side)
            assert not extra.exists() or _mode(extra) == 0o600
        fresh.chmod(0o644)
        with TaskStore(fresh) as store:
            assert "tightened" in store.mode_note
        assert _mode(fresh) == 0o600
    finally:
        os.umask(old)


def test_the_shell_history_is_created_0600_and_a_wider_one_is_tightened(
    broker_url: str, tmp_path: Path
) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from amqptool.shell.repl import history_path, run_interactive
    from tests.shell_support import new_shell

    environ = {"XDG_STATE_HOME": str(tmp_path)}
    path = history_path(environ)
    old = os.umask(0o022)
    try:
        for round_ in (1, 2):
            live = new_shell(broker_url)
            with create_pipe_input() as pipe:
                pipe.send_text(f"queue.declare {unique('hist')} no no yes\r\x04")
                run_interactive(
                    live.shell, broker="x", input=pipe, output=DummyOutput(), environ=environ
                )
            assert _mode(path) == 0o600, round_
            assert "queue.declare" in path.read_text()
            if round_ == 1:
                path.chmod(0o644)
            else:
                assert "tightened" in live.stderr.getvalue()
    finally:
        os.umask(old)
