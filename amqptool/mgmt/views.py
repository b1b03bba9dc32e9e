"""The management API's objects as flat rows for the shell's listings, filtered by a pattern.

Pure: takes the decoded JSON the API returns, gives ``(columns, rows)``. A rate is messages per
second over the API's last sample (absent until the broker has collected statistics, then 0.0).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LISTINGS", "Listing", "matches", "overview_rows"]

Row = dict[str, Any]


def matches(name: str, pattern: str) -> bool:
    """A glob (``*``, ``?``, ``[...]``) matches the whole name; plain text matches any part."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _rate(stats: Any, key: str) -> float | None:
    if not isinstance(stats, dict):
        return None
    details = stats.get(f"{key}_details")
    if isinstance(details, dict) and isinstance(details.get("rate"), int | float):
        return round(float(details["rate"]), 2)
    return None


def _queue(q: Row) -> Row:
    stats = q.get("message_stats")
    return {
        "name": q.get("name", ""),
        "type": q.get("type", "classic"),
        "ready": q.get("messages_ready", 0),
        "unacked": q.get("messages_unacknowledged", 0),
        "consumers": q.get("consumers", 0),
        "publish/s": _rate(stats, "publish"),
        "deliver/s": _rate(stats, "deliver_get"),
        "state": q.get("state", ""),
    }


def _exchange(x: Row) -> Row:
    stats = x.get("message_stats")
    return {
        "name": x.get("name", "") or "(AMQP default)",
        "type": x.get("type", ""),
        "durable": bool(x.get("durable")),
        "auto_delete": bool(x.get("auto_delete")),
        "internal": bool(x.get("internal")),
        "in/s": _rate(stats, "publish_in"),
        "out/s": _rate(stats, "publish_out"),
    }


def _binding(b: Row) -> Row:
    return {
        "source": b.get("source", "") or "(AMQP default)",
        "destination": b.get("destination", ""),
        "destination_type": b.get("destination_type", ""),
        "routing_key": b.get("routing_key", ""),
        "arguments": b.get("arguments") or {},
    }


def _consumer(c: Row) -> Row:
    queue = c.get("queue") or {}
    channel = c.get("channel_details") or {}
    return {
        "queue": queue.get("name", "") if isinstance(queue, dict) else str(queue),
        "consumer_tag": c.get("consumer_tag", ""),
        "ack_required": bool(c.get("ack_required")),
        "prefetch": c.get("prefetch_count", 0),
        "channel": channel.get("name", "") if isinstance(channel, dict) else "",
    }


def _connection(c: Row) -> Row:
    client = c.get("client_properties") or {}
    return {
        "name": c.get("name", ""),
        "user": c.get("user", ""),
        "state": c.get("state", ""),
        "channels": c.get("channels", 0),
        "client": client.get("connection_name") or client.get("product", ""),
        "heartbeat": c.get("timeout", 0),
    }


def _vhost(v: Row) -> Row:
    return {
        "name": v.get("name", ""),
        "messages": v.get("messages", 0),
        "ready": v.get("messages_ready", 0),
        "unacked": v.get("messages_unacknowledged", 0),
    }


class Listing:
    """One listing command: which API call, how a row looks, which field the pattern filters."""

    def __init__(
        self, what: str, call: str, row: Callable[[Row], Row], key: Callable[[Row], Iterable[str]]
    ) -> None:
        self.what = what
        self.call = call
        self.row = row
        self.key = key

    def rows(self, items: Iterable[Row], pattern: str = "") -> list[Row]:
        out = [self.row(item) for item in items]
        out = [r for r in out if any(matches(str(k), pattern) for k in self.key(r))]
        return out


LISTINGS: dict[str, Listing] = {
    "queue.list": Listing("queues", "queues", _queue, lambda r: [r["name"]]),
    "exchange.list": Listing("exchanges", "exchanges", _exchange, lambda r: [r["name"]]),
    "binding.list": Listing(
        "bindings", "bindings", _binding, lambda r: [r["source"], r["destination"]]
    ),
    "consumer.list": Listing("consumers", "consumers", _consumer, lambda r: [r["queue"]]),
    "connection.list": Listing(
        "connections", "connections", _connection, lambda r: [r["name"], r["client"]]
    ),
    "vhost.list": Listing("vhosts", "vhosts", _vhost, lambda r: [r["name"]]),
}


def overview_rows(data: Row, vhost: str) -> list[Row]:
    """``overview``: one row of the cluster-wide figures the API reports."""
    totals = data.get("queue_totals") or {}
    objects = data.get("object_totals") or {}
    stats = data.get("message_stats")
    return [
        {
            "cluster": data.get("cluster_name", ""),
            "node": data.get("node", ""),
            "rabbitmq": data.get("rabbitmq_version", ""),
            "erlang": data.get("erlang_version", ""),
            "vhost": vhost,
            "queues": objects.get("queues", 0),
            "exchanges": objects.get("exchanges", 0),
            "connections": objects.get("connections", 0),
            "consumers": objects.get("consumers", 0),
            "messages": totals.get("messages", 0),
            "ready": totals.get("messages_ready", 0),
            "unacked": totals.get("messages_unacknowledged", 0),
            "publish/s": _rate(stats, "publish"),
            "deliver/s": _rate(stats, "deliver_get"),
        }
    ]
