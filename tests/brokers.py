"""A second, independent RabbitMQ node for TLS, failover and fault tests.

The main broker on 127.0.0.1:5672 is shared with every other test and must never be stopped.
Tests that stop a broker, close all its connections or need a TLS listener use this node:

    node        amqptool-b@localhost      (same Erlang cookie as the main broker)
    amqp        127.0.0.1:5682
    amqps       127.0.0.1:5681            (certificates made here with openssl at each boot)
    dist port   25682
    state       $AMQPTOOL_BROKER_B_DIR or /tmp/amqptool-broker-b (config, mnesia, logs, certs)

It boots in about 5 s on two cores, so a session fixture starts it once, and only when a test
asks for it; several pytest sessions share it (:class:`SharedUse`). :class:`SecondBroker` also
makes the nodes of the three-node cluster (:mod:`tests.cluster`: no TLS, a lighter VM).

Besides pytest it needs only the standard library, so ``scripts/second_broker.py`` drives it
by hand too (``.venv/bin/python scripts/second_broker.py start|status|stop-app|start-app|stop``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from tests import harness
from tests.certs import Certificates, certificates_in, make_certificates
from tests.shared_use import SharedUse, file_lock, pid_alive

__all__ = [
    "Certificates",
    "SecondBroker",
    "SharedUse",
    "broker_b",
    "broker_b_node",
    "failover_url",
    "file_lock",
    "make_certificates",
    "node_in_use",
    "pid_alive",
    "speaks_amqp",
]

NODENAME = "amqptool-b@localhost"
AMQP_PORT = 5682
AMQPS_PORT = 5681
DIST_PORT = 25682
BASE_DIR = Path(os.environ.get("AMQPTOOL_BROKER_B_DIR", "/tmp/amqptool-broker-b"))
SYSTEM_COOKIE = Path("/var/lib/rabbitmq/.erlang.cookie")
_LIB_BIN = Path("/usr/lib/rabbitmq/bin")


# --------------------------------------------------------------------------- small helpers


def speaks_amqp(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something at host:port answers the AMQP 0-9-1 header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            data = sock.recv(8)
            return len(data) >= 1 and data[0] == 1
    except OSError:
        return False


def accepts_tcp(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback TCP port nothing listens on (a stand-in for a stopped broker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- the node


class SecondBroker(SharedUse):
    """Start, stop and poke the second RabbitMQ node (see the module docstring)."""

    def __init__(
        self,
        base: Path = BASE_DIR,
        *,
        nodename: str = NODENAME,
        amqp_port: int = AMQP_PORT,
        amqps_port: int | None = AMQPS_PORT,
        dist_port: int = DIST_PORT,
        erl_args: str = "",
    ) -> None:
        self.base = base
        self.nodename = nodename
        self.amqp_port = amqp_port
        self.tls = amqps_port is not None  # False: no TLS listener, no certificates
        self.amqps_port = amqps_port or 0
        self.dist_port = dist_port
        self.erl_args = erl_args  # e.g. "+S 1:1 +A 4": a lighter VM for the cluster's nodes
        self.certs = certificates_in(base / "certs")
        self.boot_seconds: float | None = None  # set when this process booted the node
        self.started_here = False

    # ------------------------------------------------------------ paths and environment

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def pid_file(self) -> Path:
        return self.base / "node.pid"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.home),
            ERL_CRASH_DUMP=str(self.base / "erl_crash.dump"),
            LC_ALL="C.UTF-8",
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_CONF_ENV_FILE=str(self.base / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.pid_file),
        )
        if self.erl_args:
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = self.erl_args
        return env

    def _tool(self, name: str) -> str:
        direct = _LIB_BIN / name
        if direct.exists():  # skips the Debian wrapper's `su rabbitmq`; HOME has our cookie
            return str(direct)
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} is not installed")
        return found

    def _prepare_home(self) -> None:
        """HOME for the node and its CLI: holds the Erlang cookie (the main broker's one)."""
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            if SYSTEM_COOKIE.exists():  # same cookie: `rabbitmqctl -n amqptool-b@localhost` works
                shutil.copyfile(SYSTEM_COOKIE, cookie)
            else:
                cookie.write_text(os.urandom(16).hex().upper())
            cookie.chmod(0o400)

    def _write_config(self) -> None:
        for sub in ("mnesia", "log", "certs", "users"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self._prepare_home()
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "advanced.config").write_text("[].\n")
        tls = (
            f"listeners.ssl.1 = 127.0.0.1:{self.amqps_port}\n"
            f"ssl_options.cacertfile = {self.certs.ca_file}\n"
            f"ssl_options.certfile = {self.certs.server_cert}\n"
            f"ssl_options.keyfile = {self.certs.server_key}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            + (tls if self.tls else "")
            + "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )

    # ------------------------------------------------------------ control

    def ctl(self, *args: str, check: bool = True, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n amqptool-b@localhost ARGS`` (quiet)."""
        self._prepare_home()
        proc = subprocess.run(
            [self._tool("rabbitmqctl"), "-q", "-n", self.nodename, *args],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl -n {self.nodename} {' '.join(args)} failed: {proc.stderr.strip()}"
            )
        return proc.stdout

    def node_running(self) -> bool:
        """The Erlang node answers (its AMQP app may be stopped)."""
        try:
            self.ctl("ping", check=True, timeout=20)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True

    def app_running(self) -> bool:
        return speaks_amqp("127.0.0.1", self.amqp_port)

    def _wait_app_up(self, timeout: float) -> None:
        tls = self.amqps_port
        harness.wait_until(
            lambda: self.app_running() and (not tls or accepts_tcp("127.0.0.1", tls)),
            timeout=timeout,
            interval=0.1,
            message=f"{self.nodename} to listen on {self.amqp_port} (and TLS {tls})",
        )

    def start(self, timeout: float = 90.0) -> Self:
        """Boot the node (fresh state, fresh certificates) unless it already runs."""
        if self.node_running():
            if not self.tls or self.certs.exist():  # reuse; see exclusive_use()
                return self
            self.stop()  # someone wiped the certificates: boot again with new ones
        self.boot(fresh=True, timeout=timeout)
        return self

    def boot(self, *, fresh: bool, timeout: float = 90.0) -> None:
        """``rabbitmq-server -detached`` and wait for the listeners.

        ``fresh`` wipes the node's state first (database, logs, certificates); without it the
        node comes back with its database: a restart after :meth:`kill` or :meth:`stop`.
        """
        for port in (self.amqp_port, self.amqps_port, self.dist_port):
            if port and accepts_tcp("127.0.0.1", port):
                raise RuntimeError(
                    f"port {port} is taken by something that is not {self.nodename}; "
                    "cannot start this test broker"
                )
        harness.ensure_broker()  # the system install, epmd and the cookie come with it
        if fresh:
            shutil.rmtree(self.base / "mnesia", ignore_errors=True)
            shutil.rmtree(self.log_dir, ignore_errors=True)
            shutil.rmtree(self.base / "certs", ignore_errors=True)
            self._write_config()
            if self.tls:
                make_certificates(self.base / "certs")
        started = time.monotonic()
        self._boot_detached()
        try:
            self._wait_app_up(timeout)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}\n--- node log ---\n{self.log_tail()}") from None
        self.boot_seconds = time.monotonic() - started
        self.started_here = True
        (self.base / "boot-seconds").write_text(f"{self.boot_seconds:.2f}\n")

    def stop(self, timeout: float = 60.0) -> None:
        """Halt the node and wait for its process to go (nothing to do if it is not running)."""
        pid = self._node_pid()
        if pid is None:  # `rabbitmqctl stop PIDFILE` would wait for a pid that never comes
            if self.node_running():
                self.ctl("stop", check=False, timeout=timeout)
            return
        self.ctl("stop", str(self.pid_file), check=False, timeout=timeout)
        if pid is not None:
            with contextlib.suppress(AssertionError):
                harness.wait_until(
                    lambda: not pid_alive(pid), timeout=timeout, message="node to exit"
                )
            if pid_alive(pid):  # the node ignored `stop`: it is ours, end it by its pid
                os.kill(pid, 9)

    def kill(self) -> None:
        """``kill -9`` the node's Erlang VM: no goodbye to clients or to the other nodes."""
        pid = self._node_pid()
        if pid is None or not pid_alive(pid):
            raise RuntimeError(f"{self.nodename} is not running")
        os.kill(pid, 9)
        harness.wait_until(lambda: not pid_alive(pid), timeout=30, message="the node to die")

    def _boot_detached(self) -> None:
        """``rabbitmq-server -detached`` with this node's environment (its data as it is)."""
        proc = subprocess.run(
            [self._tool("rabbitmq-server"), "-detached"],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmq-server -detached failed: {proc.stderr.strip()}")

    def kill_and_restart(self, timeout: float = 120.0) -> float:
        """``kill -9`` the node's Erlang VM, then boot it again on the same data (durable
        queues and persistent messages survive). Returns the seconds it was down."""
        killed = time.monotonic()
        self.kill()
        self._boot_detached()
        self._wait_app_up(timeout)
        return time.monotonic() - killed

    def _node_pid(self) -> int | None:
        """The pid of this node's Erlang VM, if it runs (a stale pid file, or a pid reused by
        another process, gives None: its command line must name this node's directory)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.base).encode() in cmdline else None

    def stop_app(self) -> None:
        """Stop the RabbitMQ app (listeners close, the Erlang node stays up)."""
        self.ctl("stop_app")
        harness.wait_until(
            lambda: not accepts_tcp("127.0.0.1", self.amqp_port),
            timeout=30,
            message=f"{self.nodename} to stop listening",
        )

    def start_app(self, timeout: float = 60.0) -> None:
        self.ctl("start_app", timeout=timeout)
        self._wait_app_up(timeout)

    def make_usable(self) -> None:
        if not self.app_running():  # a test elsewhere died with the app stopped
            self.start_app()

    @contextlib.contextmanager
    def app_stopped(self) -> Iterator[None]:
        """The app is stopped inside the block and running again (and listening) after it."""
        self.stop_app()
        try:
            yield
        finally:
            self.start_app()

    def connections(self) -> list[tuple[str, str]]:
        """``(pid, connection_name)`` of every client connection on the node."""
        out = self.ctl("list_connections", "pid", "client_properties", "--no-table-headers")
        rows: list[tuple[str, str]] = []
        for line in out.splitlines():
            pid, _, props = line.partition("\t")
            if not pid.startswith("<"):
                continue
            match = re.search(r'\{"connection_name","([^"]*)"\}', props)
            rows.append((pid, match.group(1) if match else ""))
        return rows

    def close_connections(self, name_prefix: str = "", reason: str = "closed by test") -> int:
        """Close client connections whose name starts with ``name_prefix``; returns how many."""
        closed = 0
        for pid, name in self.connections():
            if name.startswith(name_prefix):
                self.ctl("close_connection", pid, reason, check=False)
                closed += 1
        return closed

    def close_all_connections(self, reason: str = "closed by test") -> None:
        self.ctl("close_all_connections", "--global", reason)

    def add_vhost(self, name: str) -> str:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name

    def delete_vhost(self, name: str) -> None:
        self.ctl("delete_vhost", name, check=False)

    def url(self, vhost: str = "/", *, password: str = "guest") -> str:
        return f"amqp://guest:{password}@127.0.0.1:{self.amqp_port}/{_vhost_path(vhost)}"

    def tls_url(self, vhost: str = "/", *, host: str = "localhost") -> str:
        return f"amqps://guest:guest@{host}:{self.amqps_port}/{_vhost_path(vhost)}"

    def log_tail(self, chars: int = 3000) -> str:
        texts = []
        for path in sorted(self.log_dir.glob("*.log")):
            with contextlib.suppress(OSError):
                texts.append(f"[{path.name}]\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(texts) or "(no log)"


def _vhost_path(vhost: str) -> str:
    return "/" if vhost == "/" else vhost.replace("%", "%25").replace("/", "%2F")


def failover_url(*urls: str) -> str:
    """kombu's failover syntax: URLs joined by ``;``, tried in order."""
    return ";".join(urls)


# --------------------------------------------------------------------------- fixtures


@contextlib.contextmanager
def node_in_use(node: SecondBroker) -> Iterator[SecondBroker]:
    """``node`` registered as used by this process (booted if needed) inside the block; the
    last user stops it. Any node: the second one, or a drill's own (another name and ports)."""
    node.acquire()
    try:
        yield node
    finally:
        node.release()


@pytest.fixture(scope="session")
def broker_b_node() -> Iterator[SecondBroker]:
    """The second node, booted once per session on first use and stopped at the end."""
    with node_in_use(SecondBroker()) as node:
        yield node


@pytest.fixture
def broker_b(broker_b_node: SecondBroker) -> Iterator[SecondBroker]:
    """The second node for one test, held exclusively and running when the test starts."""
    with broker_b_node.exclusive_use() as node:
        yield node


@pytest.fixture
def b_vhost_url(broker_b: SecondBroker) -> Iterator[str]:
    """A fresh vhost on the second node for one test, deleted after it."""
    vhost = broker_b.add_vhost(f"amqptool-b-{uuid.uuid4().hex[:8]}")
    try:
        yield broker_b.url(vhost)
    finally:
        broker_b.delete_vhost(vhost)
