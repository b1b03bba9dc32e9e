"""Fixtures for the results/canvas suites: a result backend per kind, a worker (ours or a real
Celery 5.7 one) storing there, a Celery client reading there, and Redis clean-up by id.

``results_setup`` is parametrised over (worker, backend): ours/celery x redis/postgresql, so
one test runs four times and asserts the same outcome each time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.backend_support import REDIS_URL, forget_redis_keys, postgres_database
from tests.harness import CeleryPeer, unique
from tests.worker_support import close_celery, in_process_worker

WORKERS = ["ours", "celery"]
BACKENDS = ["redis", "postgresql"]


@dataclass
class ResultsSetup:
    """One worker consuming ``queue`` and storing results in ``backend``."""

    worker: str
    backend: str
    queue: str
    broker_url: str
    ids: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return "redis" if self.backend.startswith("redis") else "sql"

    def remember(self, *ids: str) -> None:
        self.ids.update(ids)

    def new_id(self) -> str:
        one = str(uuid.uuid4())
        self.ids.add(one)
        return one


@pytest.fixture(scope="session")
def pg_results_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module", params=[(w, b) for b in BACKENDS for w in WORKERS], ids="-".join)
def results_setup(
    request: pytest.FixtureRequest, broker_url: str, pg_results_url: str
) -> Iterator[ResultsSetup]:
    worker, kind = request.param
    backend = REDIS_URL if kind == "redis" else pg_results_url
    queue = unique("resq")
    setup = ResultsSetup(worker, backend, queue, broker_url)
    with ExitStack() as stack:
        if worker == "ours":
            import tests.peers.results_tasks  # noqa: F401  # registers res.* in our registry

            stack.enter_context(
                in_process_worker(broker_url, queues=[queue], concurrency=4, result_backend=backend)
            )
        else:
            peer = CeleryPeer(
                broker_url,
                queue=queue,
                pool="threads",
                concurrency=4,
                app="tests.peers.results_celery",
                extra_env={
                    "PEER_RESULT_BACKEND": backend.replace("db+mysql:", "db+mysql+pymysql:")
                },
            )
            stack.enter_context(peer)
        yield setup
    if setup.kind == "redis":
        forget_redis_keys(setup.ids)


@pytest.fixture
def celery_app(results_setup: ResultsSetup) -> Iterator[Any]:
    """A real Celery 5.7 client on the setup's backend, default queue = the worker's."""
    from celery import Celery

    app = Celery("client", broker=results_setup.broker_url, backend=results_setup.backend)
    app.conf.task_default_queue = results_setup.queue
    try:
        yield app
    finally:
        close_celery(app)


def all_ids(result: Any) -> set[str]:
    """The ids of a Celery result, its parents, children and group members (for clean-up)."""
    seen: set[str] = set()
    todo = [result]
    while todo:
        r = todo.pop()
        if r is None or getattr(r, "id", None) in seen:
            continue
        seen.add(str(r.id))
        todo.append(getattr(r, "parent", None))
        todo.extend(getattr(r, "results", None) or [])
    return seen


@pytest.fixture
def our_client(results_setup: ResultsSetup) -> Iterator[Any]:
    """Our client on the setup's backend, sending to the worker's queue by default."""
    from amqptool.client import Client

    client = Client(
        url=results_setup.broker_url,
        backend=results_setup.backend,
        default_queue=results_setup.queue,
    )
    try:
        yield client
    finally:
        client.close()
