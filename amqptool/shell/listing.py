"""The listing commands (``queue.list`` ...) and live names for completion, from the
management HTTP API. Neither needs the AMQP connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqptool.errors import AmqpToolError
from amqptool.shell.core.outcome import Table

if TYPE_CHECKING:
    from amqptool.mgmt import MgmtClient
    from amqptool.settings import BrokerSettings
    from amqptool.shell.core.names import KnownNames
    from amqptool.shell.core.parser import ParsedCommand

__all__ = ["Lister", "NameRefresher", "client_factory"]

ClientFactory = Callable[[], "MgmtClient"]


def client_factory(settings: BrokerSettings, mgmt_url: str | None) -> ClientFactory:
    """Makes API clients for the broker's first endpoint (or ``--mgmt-url``)."""

    def make() -> MgmtClient:
        from amqptool.mgmt import MgmtClient, mgmt_endpoint

        return MgmtClient(mgmt_endpoint(settings.primary, mgmt_url, settings.tls))

    return make


class Lister:
    """Runs listing commands; the client is made on first use (``--mgmt-url`` or derived)."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self._client: MgmtClient | None = None

    @property
    def client(self) -> MgmtClient:
        if self._client is None:
            self._client = self.factory()
        return self._client

    def run(self, cmd: ParsedCommand) -> Table:
        from amqptool.mgmt.views import LISTINGS, overview_rows

        client = self.client
        if cmd.name == "overview":
            rows = overview_rows(client.overview(), client.endpoint.vhost)
            return Table("overview", tuple(rows[0]), tuple(rows), vertical=True)
        listing = LISTINGS[cmd.name]
        items: list[dict[str, Any]] = getattr(client, listing.call)()
        rows = listing.rows(items, cmd.values.get("pattern", ""))
        rows.sort(key=lambda r: tuple(str(v) for v in r.values()))
        columns = tuple(rows[0]) if rows else ()
        return Table(listing.what, columns, tuple(rows))

    def queue_info(self, name: str) -> dict[str, Any] | None:
        """The API's record of one queue of the vhost (None when unknown or unreachable)."""
        try:
            return next((q for q in self.client.queues() if q.get("name") == name), None)
        except AmqpToolError:
            return None


class NameRefresher:
    """Keeps completion's queue and exchange names current from the API, off the UI thread.

    A daemon thread lists both every ``interval`` seconds (and when :meth:`poke` asks) and swaps
    them into :class:`KnownNames` whole. An unreachable API is tried again later, silently.
    """

    def __init__(self, factory: ClientFactory, names: KnownNames, interval: float = 5.0) -> None:
        self._factory = factory
        self.names = names
        self.interval = interval
        self.refreshed = threading.Event()  # set after each successful refresh
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amqptool-names", daemon=True)

    def start(self) -> NameRefresher:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Refresh soon (after a command that may have changed the topology)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1)  # a daemon: a request still waiting does not hold us

    def refresh_once(self) -> bool:
        try:
            client = self._factory()
            queues = [str(q.get("name", "")) for q in client.queues()]
            exchanges = [str(x.get("name", "")) for x in client.exchanges()]
        except AmqpToolError:
            return False
        self.names.replace_listed(queues, exchanges)
        self.refreshed.set()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh_once()
            self._wake.wait(self.interval)
            self._wake.clear()
