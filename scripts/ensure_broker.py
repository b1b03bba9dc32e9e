#!/usr/bin/env python3
"""Make sure a RabbitMQ broker answers on the URL in use; print one line saying what was done.

1. If something speaks AMQP at the URL's host:port: nothing to do.
2. If ``rabbitmq-server`` is installed but not running (and the host is local): start it
   detached and wait until it answers.
3. If it is missing and we are root on Debian: ``apt-get install rabbitmq-server``, then start.

4. Make sure the management plugin is enabled (``rabbitmq-plugins enable rabbitmq_management``,
   idempotent; the node is never stopped) and wait until its HTTP port (15672) answers: the
   shell's listing tests use the management API.

Exit 0 when the broker answers, 1 otherwise (with one line on stderr saying why).
Uses only the standard library, so it runs before the project is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def broker_address() -> tuple[str, int]:
    url = (
        os.environ.get("AMQP_URL")
        or os.environ.get("CELERY_BROKER_URL")
        or "amqp://guest:guest@localhost:5672//"
    )
    first = url.split(";")[0]
    parts = urlsplit(first)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return parts.hostname or "localhost", port


def speaks_amqp(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the peer answers the AMQP 0-9-1 protocol header with a method frame."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            data = sock.recv(8)
            return len(data) >= 1 and data[0] == 1
    except OSError:
        return False


def wait_for(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if speaks_amqp(host, port):
            return True
        time.sleep(0.5)
    return False


def run(cmd: list[str], quiet: bool = True) -> int:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.call(cmd, stdout=out, stderr=out)


def start_app() -> bool:
    """The node may be up with its app stopped (``rabbitmqctl stop_app``): start the app."""
    if not shutil.which("rabbitmqctl"):
        return False
    try:
        return (
            subprocess.call(
                ["rabbitmqctl", "-q", "start_app"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


def start_server() -> None:
    # -detached forks the Erlang VM and returns at once.
    run(["rabbitmq-server", "-detached"])


def install_server() -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.call(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, env=env)
    rc = subprocess.call(
        ["apt-get", "install", "-y", "-qq", "rabbitmq-server"], stdout=subprocess.DEVNULL, env=env
    )
    return rc == 0 and shutil.which("rabbitmq-server") is not None


MGMT_PORT = 15672


def http_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when an HTTP server answers ``GET /api/overview`` (any status) on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"GET /api/overview HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def ensure_management(host: str) -> bool:
    """Enable rabbitmq_management (idempotent) and wait until its port answers."""
    if http_answers(host, MGMT_PORT):
        return True
    if host not in LOCAL_HOSTS or not shutil.which("rabbitmq-plugins"):
        return False
    try:
        subprocess.call(
            ["rabbitmq-plugins", "-q", "enable", "rabbitmq_management"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if http_answers(host, MGMT_PORT):
            return True
        time.sleep(0.5)
    return False


def main() -> int:
    rc = ensure_amqp()
    if rc != 0:
        return rc
    host, _port = broker_address()
    if ensure_management(host):
        print(f"broker: management API answers on {host}:{MGMT_PORT}")
        return 0
    print(
        f"broker: the management plugin does not answer on {host}:{MGMT_PORT} "
        "(rabbitmq-plugins enable rabbitmq_management failed)",
        file=sys.stderr,
    )
    return 1


def ensure_amqp() -> int:
    host, port = broker_address()
    where = f"{host}:{port}"
    if speaks_amqp(host, port):
        print(f"broker: RabbitMQ already answers on {where}")
        return 0
    if host not in LOCAL_HOSTS:
        print(
            f"broker: nothing answers on {where} and it is not local; start it yourself",
            file=sys.stderr,
        )
        return 1
    action = "started"
    if not shutil.which("rabbitmq-server"):
        if not install_server():
            print(
                "broker: rabbitmq-server is not installed and cannot be installed here "
                "(needs root and apt-get)",
                file=sys.stderr,
            )
            return 1
        action = "installed and started"
        if wait_for(host, port, 20):  # the Debian package starts the service itself
            print(f"broker: RabbitMQ {action} on {where}")
            return 0
    if action == "started" and start_app() and wait_for(host, port, 30):
        print(f"broker: RabbitMQ app started on {where} (its node was running)")
        return 0
    start_server()
    if wait_for(host, port, 90):
        print(f"broker: RabbitMQ {action} on {where}")
        return 0
    print(
        f"broker: rabbitmq-server was {action} but nothing answers on {where} after 90 s",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
