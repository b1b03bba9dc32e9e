"""The Celery peer used by interop tests really runs tasks on the real broker."""

from __future__ import annotations

import pytest

from tests.harness import CeleryPeer

pytestmark = pytest.mark.celery


def test_celery_peer_runs_a_task(celery_peer: CeleryPeer) -> None:
    from celery import Celery

    app = Celery("client", broker=celery_peer.broker_url, backend="rpc://")
    try:
        result = app.send_task("peer.add", (2, 2), queue=celery_peer.queue)
        assert result.get(timeout=20) == 4
        replies = app.control.inspect(destination=[celery_peer.nodename], timeout=2).ping()
        assert replies == {celery_peer.nodename: {"ok": "pong"}}
    finally:
        app.close()
