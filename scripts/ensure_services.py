#!/usr/bin/env python3
"""Make sure the result-backend services the tests use answer; print one line per service.

Redis 127.0.0.1:6379, PostgreSQL 127.0.0.1:5432 (database ``test``) and MariaDB 127.0.0.1:3306
(database ``test``). A service that does not answer is started; one that is not installed is
installed with apt-get when we are root. A missing ``test`` database is created.

Exit 0 when all answer, 1 otherwise (one line on stderr per service that could not be made to).
Uses only the standard library, so it runs before the project is installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

HOST = "127.0.0.1"


def answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(port):
            return True
        time.sleep(0.3)
    return False


def run(cmd: list[str] | str) -> None:
    subprocess.run(cmd, shell=isinstance(cmd, str), check=False, capture_output=True, timeout=300)


def apt_install(*packages: str) -> bool:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, env=env)
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", *packages], check=False, capture_output=True, env=env
    )
    return done.returncode == 0


def start_redis() -> None:
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    run(
        "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    )


def start_postgres() -> None:
    for version in (
        sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    ):
        run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])


def start_mariadb() -> None:
    os.makedirs("/run/mysqld", exist_ok=True)
    if shutil.which("chown"):
        run(["chown", "mysql:mysql", "/run/mysqld"])
    run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"]
    )


def pg_create_db() -> str | None:
    psql = ["psql", "-h", HOST, "-U", "postgres", "-tAc"]
    found = subprocess.run(
        [*psql, "SELECT 1 FROM pg_database WHERE datname='test'"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return f"psql failed: {found.stderr.strip()}"
    if found.stdout.strip() != "1":
        made = subprocess.run(
            [*psql, "CREATE DATABASE test"], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return f"cannot create database test: {made.stderr.strip()}"
    return None


def maria_create_db() -> str | None:
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    made = subprocess.run(
        [client, "-h", HOST, "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS test"],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        return f"cannot create database test: {made.stderr.strip()}"
    return None


SERVICES: list[tuple[str, int, str, str, Callable[[], None], Callable[[], str | None] | None]] = [
    ("redis", 6379, "redis-server", "redis-server", start_redis, None),
    ("postgresql", 5432, "pg_ctlcluster", "postgresql", start_postgres, pg_create_db),
    ("mariadb", 3306, "/usr/sbin/mariadbd", "mariadb-server", start_mariadb, maria_create_db),
]


def ensure(
    name: str,
    port: int,
    binary: str,
    package: str,
    start: Callable[[], None],
    make_db: Callable[[], str | None] | None,
) -> str | None:
    """None when the service answers (and has its database); else why not."""
    if not answers(port):
        installed = shutil.which(binary) or os.path.exists(binary) or glob.glob(binary)
        if not installed and not apt_install(package):
            return f"{name} is not installed and cannot be installed (need root and apt-get)"
        start()
        if not wait_port(port):
            return f"{name} did not answer on {HOST}:{port} after starting it"
        print(f"{name}: started on {HOST}:{port}")
    else:
        print(f"{name}: answering on {HOST}:{port}")
    return make_db() if make_db is not None else None


def main() -> int:
    failed = 0
    for service in SERVICES:
        why = ensure(*service)
        if why is not None:
            print(f"error: {why}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
