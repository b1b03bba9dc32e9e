"""Shared fixtures: a real broker (made sure of once), a vhost per session, unique names."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import harness

ROOT = Path(__file__).resolve().parent.parent

# The second broker node (TLS, failover, faults): fixtures broker_b_node and broker_b.
# The three-node cluster (tests/cluster.py): fixtures cluster_nodes, cluster, cluster_vhost.
pytest_plugins = ("tests.brokers", "tests.cluster", "tests.results_support")


@pytest.fixture(scope="session")
def broker_vhost() -> Iterator[str]:
    harness.ensure_broker()
    vhost = harness.create_vhost()
    yield vhost
    harness.delete_vhost(vhost)


@pytest.fixture(scope="session")
def broker_url(broker_vhost: str) -> str:
    """A URL for this session's own vhost on the real broker."""
    return harness.url_for(broker_vhost)


@pytest.fixture
def fresh_vhost_url() -> Iterator[str]:
    """A brand-new vhost for one test (Celery default names, nothing left from others)."""
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-t1")
    yield harness.url_for(vhost)
    harness.delete_vhost(vhost)


@pytest.fixture
def unique_name() -> str:
    return harness.unique("amqptool")


@pytest.fixture
def cli_env(broker_url: str) -> dict[str, str]:
    """Environment for running amqptool/celery subprocesses against the session vhost."""
    env = dict(os.environ)
    env["AMQP_URL"] = broker_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("CELERY_BROKER_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def celery_peer(broker_url: str) -> Iterator[harness.CeleryPeer]:
    """One real Celery 5.7 worker (solo pool, -E) for the session, on its own queue."""
    peer = harness.CeleryPeer(broker_url).start()
    yield peer
    peer.stop()


# The folder a test lives in says what it needs; the marker of the same name selects it
# (``pytest -m unit`` is the fast loop: pure tests, no services).
LAYERS = ("unit", "broker", "celery", "faults", "ui")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            folder = item.path.resolve().relative_to(tests_dir).parts[0]
        except ValueError:
            continue
        if folder in LAYERS:
            item.add_marker(getattr(pytest.mark, folder))
