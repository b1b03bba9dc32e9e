"""Helpers for fault drills: where is a client connected, is a queue consumed, fail a broker.

Used by the failover test now and by the phase-2 drills (broker restart with worker, monitor
and shell; load with crashes). The main broker is never stopped: the second node
(:mod:`tests.brokers`) is the one that goes away.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from amqptool.errors import AmqpToolError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests import harness
from tests.brokers import SecondBroker, failover_url

__all__ = ["FailoverDrill", "consumer_count", "main_connections"]


def main_connections(vhost: str) -> list[tuple[str, str]]:
    """``(pid, connection_name)`` of the client connections to ``vhost`` on the main broker."""
    out = harness.rabbitmqctl(
        "list_connections", "pid", "vhost", "client_properties", "--no-table-headers"
    )
    rows: list[tuple[str, str]] = []
    for line in out.splitlines():
        pid, _, rest = line.partition("\t")
        conn_vhost, _, props = rest.partition("\t")
        if conn_vhost != vhost:
            continue
        marker = '{"connection_name","'
        start = props.find(marker)
        name = (
            props[start + len(marker) : props.find('"', start + len(marker))] if start >= 0 else ""
        )
        rows.append((pid, name))
    return rows


def consumer_count(url: str, queue: str) -> int:
    """How many consumers ``queue`` has (0 when it does not exist or the broker is away)."""
    try:
        with Connection(BrokerSettings.from_url(url, environ={}), name="fault-probe") as conn:
            return conn.channel().queue_declare(queue, passive=True).consumer_count
    except AmqpToolError:
        return 0


@dataclass
class FailoverDrill:
    """A client given ``-b "<second node>;<main vhost>"``, and where it is connected now."""

    broker_b: SecondBroker
    main_vhost: str
    b_vhost: str = "/"

    @property
    def b_url(self) -> str:
        return self.broker_b.url(self.b_vhost)

    @property
    def main_url(self) -> str:
        return harness.url_for(self.main_vhost)

    def url(self) -> str:
        """The failover list: the second node first, the main broker after it."""
        return failover_url(self.b_url, self.main_url)

    def on_second_node(self, connection_name: str) -> bool:
        with contextlib.suppress(RuntimeError):  # the node's app may be stopped
            return any(name == connection_name for _, name in self.broker_b.connections())
        return False

    def on_main(self, connection_name: str) -> bool:
        return any(name == connection_name for _, name in main_connections(self.main_vhost))

    def wait_on_second_node(self, connection_name: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: self.on_second_node(connection_name),
            timeout=timeout,
            interval=0.2,
            message=f"{connection_name!r} to connect to the second node",
        )

    def wait_on_main(self, connection_name: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: self.on_main(connection_name),
            timeout=timeout,
            interval=0.2,
            message=f"{connection_name!r} to fail over to the main broker",
        )

    def wait_consuming(self, url: str, queue: str, timeout: float = 30.0) -> None:
        harness.wait_until(
            lambda: consumer_count(url, queue) > 0,
            timeout=timeout,
            interval=0.2,
            message=f"a consumer on {queue!r}",
        )
