"""A typed client of RabbitMQ's management HTTP API: GET requests, JSON answers, timeouts.

Only the standard library (:mod:`http.client`). Errors leave this module in amqptool's tree:

- nothing listens, the connection is refused or times out, or the server is not the
  management API (a 404 on ``/api/overview``, a non-JSON answer):
  :class:`ManagementUnavailableError` (exit 1), whose hint says how to enable the plugin;
- 401: :class:`~amqptool.errors.AuthenticationError` (exit 71);
- any other HTTP error: :class:`~amqptool.errors.BrokerError` with the API's reason.

The password is never part of a message or a ``repr``.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from amqptool.errors import AmqpToolError, AuthenticationError, BrokerError, SettingsError
from amqptool.settings import BrokerEndpoint, TLSOptions

__all__ = [
    "DEFAULT_MGMT_PORT",
    "ManagementUnavailableError",
    "MgmtClient",
    "MgmtEndpoint",
    "mgmt_endpoint",
]

DEFAULT_MGMT_PORT = 15672
DEFAULT_MGMT_TLS_PORT = 15671
DEFAULT_TIMEOUT = 5.0
ENABLE_HINT = (
    "listing needs the RabbitMQ management plugin: rabbitmq-plugins enable rabbitmq_management "
    "(or give its address with --mgmt-url)"
)


class ManagementUnavailableError(AmqpToolError):
    """The management API does not answer at the address in use."""


@dataclass(frozen=True)
class MgmtEndpoint:
    """Where the API is and who we are there; ``repr`` never shows the password."""

    scheme: str
    host: str
    port: int
    user: str
    vhost: str
    path_prefix: str = ""
    ca_file: str | None = None
    _password: str = field(default="", repr=False)

    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path_prefix}"

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.user}:{self._password}".encode()).decode("ascii")
        return f"Basic {token}"


def mgmt_endpoint(
    broker: BrokerEndpoint, url: str | None = None, tls: TLSOptions | None = None
) -> MgmtEndpoint:
    """The API address: ``url`` (``--mgmt-url``), else the broker's host on port 15672 (15671
    over TLS for amqps://); the broker's user, password and vhost unless ``url`` names a user."""
    ca_file = tls.ca_file if tls else None
    if not url:
        secure = broker.ssl
        return MgmtEndpoint(
            scheme="https" if secure else "http",
            host=broker.host,
            port=DEFAULT_MGMT_TLS_PORT if secure else DEFAULT_MGMT_PORT,
            user=broker.userid,
            vhost=broker.vhost,
            ca_file=ca_file,
            _password=broker.password(),
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "--mgmt-url: expected http://HOST:PORT or https://HOST:PORT",
            hint="e.g. --mgmt-url http://localhost:15672",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SettingsError("--mgmt-url: the port is not a number") from None
    user = unquote(parts.username) if parts.username else broker.userid
    password = unquote(parts.password or "") if parts.username else broker.password()
    return MgmtEndpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        user=user,
        vhost=broker.vhost,
        path_prefix=parts.path.rstrip("/"),
        ca_file=ca_file,
        _password=password,
    )


class MgmtClient:
    """GETs against the API. Not shared between threads (one client per thread)."""

    def __init__(self, endpoint: MgmtEndpoint, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    # ------------------------------------------------------------------ objects

    def overview(self) -> dict[str, Any]:
        data = self.get("/api/overview")
        return data if isinstance(data, dict) else {}

    def vhosts(self) -> list[dict[str, Any]]:
        return self._list("/api/vhosts")

    def queues(self) -> list[dict[str, Any]]:
        return self._list(f"/api/queues/{self._vhost()}")

    def exchanges(self) -> list[dict[str, Any]]:
        return self._list(f"/api/exchanges/{self._vhost()}")

    def bindings(self) -> list[dict[str, Any]]:
        return self._list(f"/api/bindings/{self._vhost()}")

    def consumers(self) -> list[dict[str, Any]]:
        return self._list(f"/api/consumers/{self._vhost()}")

    def connections(self) -> list[dict[str, Any]]:
        return self._list(f"/api/vhosts/{self._vhost()}/connections")

    def _vhost(self) -> str:
        return quote(self.endpoint.vhost, safe="")

    def _list(self, path: str) -> list[dict[str, Any]]:
        data = self.get(path)
        if not isinstance(data, list):
            raise BrokerError(f"management API: {path} did not answer with a list")
        return [item for item in data if isinstance(item, dict)]

    # ------------------------------------------------------------------ HTTP

    def get(self, path: str) -> Any:
        """GET ``path`` (below the API's base) and decode the JSON answer."""
        ep = self.endpoint
        where = ep.base()
        conn = self._connection()
        try:
            conn.request(
                "GET",
                ep.path_prefix + path,
                headers={"Authorization": ep.authorization(), "Accept": "application/json"},
            )
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            raise ManagementUnavailableError(
                f"the management API does not answer at {where}: {_reason(exc)}",
                hint=ENABLE_HINT,
            ) from None
        finally:
            conn.close()
        return self._decode(path, resp.status, body, where)

    def _connection(self) -> http.client.HTTPConnection:
        ep = self.endpoint
        if ep.scheme == "https":
            ctx = ssl.create_default_context(cafile=ep.ca_file)
            return http.client.HTTPSConnection(ep.host, ep.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(ep.host, ep.port, timeout=self.timeout)

    def _decode(self, path: str, status: int, body: bytes, where: str) -> Any:
        if status == 401:
            raise AuthenticationError(
                f"the management API at {where} refused the credentials of user "
                f"{self.endpoint.user!r}",
                hint="the user needs the 'management' (or 'monitoring') tag",
            )
        reason = _api_reason(body)
        if status == 404 and not reason:  # the API answers its 404s in JSON; this is not it
            raise ManagementUnavailableError(
                f"no management API at {where} (HTTP 404)", hint=ENABLE_HINT
            )
        if status >= 400:
            raise BrokerError(f"management API: HTTP {status} for {path}: {reason or 'error'}")
        try:
            return json.loads(body)
        except ValueError:
            raise ManagementUnavailableError(
                f"{where} answered, but not with the management API's JSON", hint=ENABLE_HINT
            ) from None


def _api_reason(body: bytes) -> str:
    """The ``reason`` of the API's JSON error answer ('' when the body is not one)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        return str(data.get("reason") or data.get("error") or "")
    return ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
