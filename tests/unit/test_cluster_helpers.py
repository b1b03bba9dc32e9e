"""The cluster fixture's pure helpers: URL lists per worker, the monitor's view of a worker."""

from __future__ import annotations

from typing import Any

from tests.cluster import Cluster, monitor_view


def test_url_lists_prefer_a_different_node_each() -> None:
    cluster = Cluster("/nonexistent/amqptool-cluster")  # nothing is started
    lists = [cluster.urls("v", prefer=i).split(";") for i in range(3)]
    assert [urls[0] for urls in lists] == [n.url("v") for n in cluster.nodes]
    assert [n.amqp_port for n in cluster.nodes] == [5691, 5692, 5693]
    for urls in lists:
        assert sorted(urls) == sorted(n.url("v") for n in cluster.nodes)


def beats(*times: float, kind: str = "worker-heartbeat") -> list[dict[str, Any]]:
    return [
        {"hostname": "w@h", "type": kind, "freq": 2.0, "timestamp": t, "local_received": t}
        for t in times
    ]


def test_a_worker_heard_every_interval_is_never_shown_offline() -> None:
    assert monitor_view(beats(0.0, 2.0, 4.0, 5.5, 7.5)) == (2.0, 0, 0.0)


def test_a_silence_longer_than_two_intervals_shows_offline_for_the_excess() -> None:
    # 4 s is the window (2 x freq 2 s); a 7 s silence shows the worker offline for 3 s
    assert monitor_view(beats(0.0, 2.0, 9.0, 11.0)) == (7.0, 0, 3.0)


def test_worker_offline_events_are_counted() -> None:
    events = beats(0.0, 2.0) + beats(3.0, kind="worker-offline")
    assert monitor_view(events)[1] == 1
