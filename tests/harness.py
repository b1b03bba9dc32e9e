"""Test harness: a real RabbitMQ for every test, isolated per session (and per test on request).

Each pytest session gets its own vhost (created with rabbitmqctl, deleted at the end), so tests
may use Celery's default names (``celery``, ``celeryev``, ``celery.pidbox``) without meeting
another run's traffic. Tests that need a pristine vhost use the ``fresh_vhost_url`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def ensure_broker() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ensure_broker.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError("no RabbitMQ broker for the tests: " + proc.stderr.strip())


def run_amqptool_bytes(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """``python -m amqptool ARGS`` from the checkout; stdout and stderr as raw bytes."""
    return subprocess.run(
        [sys.executable, "-m", "amqptool", *args],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def rabbitmqctl(*args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def create_vhost(prefix: str = "amqptool-test") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name, check=False)


def url_for(vhost: str) -> str:
    host = os.environ.get("AMQPTOOL_TEST_HOST", "127.0.0.1")
    return f"amqp://guest:guest@{host}:5672/{vhost}"


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM (a warm shutdown for workers), then SIGKILL if it has not ended in ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class CeleryPeer:
    """A real ``celery worker`` subprocess (Celery 5.7), consuming its own queue."""

    def __init__(
        self,
        broker_url: str,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        events: bool = True,
        queue: str | None = None,
        nodename: str | None = None,
        app: str = "tests.peers.celery_app",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.app = app
        self.extra_env = dict(extra_env or {})
        self.queue = queue or unique("peerq")
        self.nodename = nodename or f"{unique('celerypeer')}@localhost"
        self.pool = pool
        self.concurrency = concurrency
        self.events = events
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = Path(f"/tmp/{self.nodename.split('@')[0]}.log")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AMQP_URL"] = self.broker_url
        env["PEER_QUEUE"] = self.queue
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("CELERY_BROKER_URL", None)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> CeleryPeer:
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            "-n",
            self.nodename,
            "-Q",
            self.queue,
            "-P",
            self.pool,
            "-c",
            str(self.concurrency),
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        if self.events:
            cmd.append("-E")
        self._log: IO[str] | None = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, text=True, env=self.env(), cwd=ROOT
        )
        wait_until(
            lambda: (
                "ready." in self.log_path.read_text()
                or self.proc is None
                or self.proc.poll() is not None
            ),
            timeout=timeout,
            message=f"celery worker {self.nodename} to start",
        )
        if self.proc.poll() is not None:
            raise RuntimeError("celery worker died:\n" + self.log_path.read_text()[-3000:])
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        log, self._log = getattr(self, "_log", None), None
        try:
            self._stop(proc)
        finally:
            if log is not None:
                log.close()

    def _stop(self, proc: subprocess.Popen[str] | None) -> None:
        if proc is not None:
            stop_process(proc)

    def __enter__(self) -> CeleryPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_amqptool(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """``python -m amqptool ARGS`` from the checkout; output decoded (UTF-8), never raises."""
    proc = run_amqptool_bytes(*args, env=env, timeout=timeout)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def modules_loaded_by(code: str, *, env: dict[str, str] | None = None) -> set[str]:
    """Top-level and dotted names in ``sys.modules`` after running ``code`` in a fresh Python.

    The start-up and layering tests use it: what a command or a core module pulls in is only
    visible in a new interpreter.
    """
    probe = code + "\nimport sys as _sys\nprint('MODULES', ' '.join(sorted(_sys.modules)))\n"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MODULES ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"probe failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return set(lines[-1].split()[1:])


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}
