"""One chord on Redis whose header tasks run partly on a Celery 5.7 worker and partly on
ours, both consuming the same queue: the chord counter keys and steps are shared, the body
runs once with every header result, in header order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.backend_support import REDIS_URL, forget_redis_keys
from tests.harness import CeleryPeer, unique
from tests.results_support import all_ids
from tests.worker_support import close_celery, in_process_worker

pytestmark = pytest.mark.celery


@pytest.fixture
def shared_queue(broker_url: str) -> Iterator[str]:
    from tests.peers import results_tasks  # noqa: F401  # registers res.* in our registry

    queue = unique("sharedq")
    peer = CeleryPeer(
        broker_url,
        queue=queue,
        pool="threads",
        concurrency=2,
        app="tests.peers.results_celery",
        extra_env={"PEER_RESULT_BACKEND": REDIS_URL},
    )
    with peer, in_process_worker(broker_url, queues=[queue], result_backend=REDIS_URL):
        yield queue


def test_a_chord_split_between_a_celery_worker_and_ours(broker_url: str, shared_queue: str) -> None:
    from celery import Celery, chord

    app: Any = Celery("client", broker=broker_url, backend=REDIS_URL)
    app.conf.task_default_queue = shared_queue
    try:
        header = [app.signature("res.tag", args=(i,)) for i in range(24)]
        r = chord(header, app.signature("res.tagsum")).apply_async()
        got = r.get(timeout=60)
        forget_redis_keys(all_ids(r))
    finally:
        close_celery(app)
    assert got["sum"] == sum(range(24))
    assert got["by"] == ["celery", "ours"]  # both workers ran header tasks of this chord
    assert got["body"] in ("celery", "ours")
