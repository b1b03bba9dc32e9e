"""Broker settings: one validated value shared by every subcommand.

Resolution order for the URL: ``-b/--broker`` (``-b @PATH`` reads it from a file), then
``--broker-file PATH``, then ``$AMQP_URL``, ``$AMQP_URL_FILE``, ``$CELERY_BROKER_URL``,
``$CELERY_BROKER_URL_FILE``, then ``amqp://guest:guest@localhost:5672//``. A URL read from a file or
the environment keeps the password out of ``ps`` (and ``/proc/PID/cmdline``). Several URLs
separated by ``;`` (as kombu takes them) are failover alternatives, tried in order.

The password never leaves this module in clear text except through
:meth:`BrokerEndpoint.password`, which only the transport reads. ``repr``/``str`` redact it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from amqptool.errors import SettingsError

__all__ = [
    "DEFAULT_URL",
    "BrokerEndpoint",
    "BrokerSettings",
    "TLSOptions",
    "parse_broker_url",
    "read_url_file",
    "redact_url",
    "resolve_broker_url",
]

DEFAULT_URL = "amqp://guest:guest@localhost:5672//"
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
_KNOWN_QUERY = {"heartbeat", "connection_timeout", "connect_timeout", "max_message_size"}
_SCHEME_PREFIX = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class TLSOptions:
    """Paths for TLS: CA bundle, client certificate and key."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)


@dataclass(frozen=True)
class BrokerEndpoint:
    """One broker address. ``repr`` never shows the password."""

    scheme: str
    host: str
    port: int
    userid: str
    vhost: str
    heartbeat: int | None = None
    connection_timeout: float | None = None
    max_message_size: int | None = None  # bytes; None: the broker version's default
    _password: str = field(default="", repr=False)

    @property
    def ssl(self) -> bool:
        return self.scheme == "amqps"

    def password(self) -> str:
        """The clear-text password. Only the transport layer should call this."""
        return self._password

    def redacted(self) -> str:
        """The URL with the password replaced by ``****``."""
        vhost = "/" + ("/" if self.vhost == "/" else _quote_vhost(self.vhost))
        cred = self.userid + (":****" if self._password else "")
        return f"{self.scheme}://{cred}@{_host_for_url(self.host)}:{self.port}{vhost}"

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"BrokerEndpoint({self.redacted()!r})"


@dataclass(frozen=True)
class BrokerSettings:
    """All broker endpoints (failover order) and the TLS options."""

    endpoints: tuple[BrokerEndpoint, ...]
    tls: TLSOptions = TLSOptions()
    # the shared key that signs remote control (amqptool.codec.signing); None: unsigned
    control_key: bytes | None = field(default=None, repr=False)

    @property
    def primary(self) -> BrokerEndpoint:
        return self.endpoints[0]

    def redacted(self) -> str:
        return ";".join(e.redacted() for e in self.endpoints)

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"BrokerSettings({self.redacted()!r})"

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        tls: TLSOptions | None = None,
        environ: Mapping[str, str] | None = None,
        url_file: str | None = None,
        control_key_file: str | None = None,
    ) -> BrokerSettings:
        resolved = resolve_broker_url(url, environ, url_file=url_file)
        endpoints = tuple(parse_broker_url(part) for part in _split_failover(resolved))
        tls = tls or TLSOptions()
        for path, what in (
            (tls.ca_file, "--ssl-ca"),
            (tls.cert_file, "--ssl-cert"),
            (tls.key_file, "--ssl-key"),
        ):
            if path is not None and not os.path.isfile(path):
                raise SettingsError(f"{what}: no such file: {path}")
        if tls.key_file and not tls.cert_file:
            raise SettingsError("--ssl-key needs --ssl-cert")
        plain = next((ep for ep in endpoints if not ep.ssl), None)
        if tls.given and plain is not None:
            option = "--ssl-ca" if tls.ca_file else "--ssl-cert"
            raise SettingsError(
                f"{option} needs an amqps:// URL, but {plain.redacted()} is plain amqp://",
                hint=f"use amqps://{_host_for_url(plain.host)}:5671/... for TLS",
            )
        from amqptool.codec.signing import load_control_key  # pure, small

        key = load_control_key(control_key_file, environ)
        return cls(endpoints=endpoints, tls=tls, control_key=key)


def resolve_broker_url(
    url: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    url_file: str | None = None,
) -> str:
    """The URL to use: the option, the option's file, the variables, their files, the default."""
    env = os.environ if environ is None else environ
    if url:
        return read_url_file(url[1:], "-b @FILE") if url.startswith("@") else url
    if url_file:
        return read_url_file(url_file, "--broker-file")
    for name in ("AMQP_URL", "CELERY_BROKER_URL"):
        if env.get(name):
            return env[name]
        path = env.get(name + "_FILE")
        if path:
            return read_url_file(path, "$" + name + "_FILE")
    return DEFAULT_URL


_MAX_URL_FILE = 64 * 1024


def read_url_file(path: str, what: str) -> str:
    """The broker URL(s) in *path*: lines joined by ``;``; blank and ``#`` lines skipped."""
    if not path:
        raise SettingsError(f"{what}: no file name given")
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_URL_FILE + 1)
    except OSError as exc:
        raise SettingsError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_URL_FILE:
        raise SettingsError(f"{what}: {path} is larger than {_MAX_URL_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{what}: {path} is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines()]
    urls = [line for line in lines if line and not line.startswith("#")]
    if not urls:
        raise SettingsError(f"{what}: {path} holds no broker URL")
    return ";".join(urls)


def _split_failover(url: str) -> list[str]:
    parts = [p.strip() for p in url.split(";")]
    parts = [p for p in parts if p]
    if not parts:
        raise SettingsError("broker URL is empty")
    return parts


def parse_broker_url(url: str) -> BrokerEndpoint:
    """Parse one ``amqp://`` / ``amqps://`` URL; errors name the bad part."""
    if not _SCHEME_PREFIX.match(url):  # "://" must follow the scheme, not hide in the vhost
        raise SettingsError(
            f"broker URL has no scheme: {_redact_schemeless(url)!r}",
            hint="expected amqp://user:password@host:port/vhost",
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # urllib may quote the whole netloc, password included
        userinfo = re.split(r"[/?#]", url.partition("://")[2])[0].rpartition("@")[0]
        detail = str(exc)
        if ":" in userinfo:
            detail = detail.replace(userinfo, userinfo.partition(":")[0] + ":****")
        raise SettingsError(f"broker URL is malformed: {redact_url(url)!r}: {detail}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise SettingsError(
            f"broker URL scheme {parts.scheme!r} is not supported",
            hint="use amqp:// or amqps://",
        )
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    user = unquote(user) if userinfo else "guest"
    # Like kombu (Celery's transport): a user with no password (``amqp://guest@host//``) or an
    # empty one gets the default password, "guest".
    password = unquote(password) or "guest"
    host, port = _split_hostport(hostport, scheme, url)
    vhost = _parse_vhost(parts.path)
    heartbeat: int | None = None
    timeout: float | None = None
    max_size: int | None = None
    query = parse_qs(parts.query, keep_blank_values=True)
    for key, values in query.items():
        if key not in _KNOWN_QUERY:
            raise SettingsError(
                f"broker URL query parameter {key!r} is not supported",
                hint="known: heartbeat, connection_timeout, max_message_size",
            )
        value = values[-1]
        if key == "heartbeat":
            heartbeat = _parse_number(value, "heartbeat", integer=True)  # type: ignore[assignment]  # integer=True returns int
        elif key == "max_message_size":
            max_size = _parse_number(value, key, integer=True)  # type: ignore[assignment]  # integer=True returns int
            if max_size is not None and max_size < 1:
                raise SettingsError("broker URL: max_message_size must be at least 1 byte")
        else:
            timeout = _parse_number(value, key, integer=False)
    return BrokerEndpoint(
        scheme=scheme,
        host=host,
        port=port,
        userid=user,
        vhost=vhost,
        heartbeat=heartbeat,
        connection_timeout=timeout,
        max_message_size=max_size,
        _password=password,
    )


def _split_hostport(hostport: str, scheme: str, url: str) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SettingsError(f"broker URL host is malformed: {hostport!r}")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise SettingsError(f"broker URL host is malformed: {hostport!r}")
    else:
        host, sep, port_text = hostport.partition(":")
        if sep and not port_text:
            raise SettingsError("broker URL port is empty")
    host = unquote(host) or "localhost"
    if not port_text:
        return host, _DEFAULT_PORTS[scheme]
    if not (port_text.isascii() and port_text.isdigit()):  # "⁴".isdigit() is True too
        raise SettingsError(
            f"broker URL port {port_text!r} is not a number",
            hint="expected e.g. localhost:5672",
        )
    port = int(port_text)
    if not 0 < port < 65536:
        raise SettingsError(f"broker URL port {port} is out of range (1-65535)")
    return host, port


def _parse_vhost(path: str) -> str:
    # "" or "/" -> "/" ; "//" -> "/" ; "/%2F" -> "/" ; "/name" -> "name"
    if path in ("", "/"):
        return "/"
    vhost = unquote(path[1:])
    return vhost or "/"


def _parse_number(value: str, name: str, *, integer: bool) -> float | int:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"broker URL {name}={value!r} is not a number") from None
    if not math.isfinite(number):  # "inf", "nan", "1e400"
        raise SettingsError(f"broker URL {name}={value!r} is not a finite number")
    if number < 0:
        raise SettingsError(f"broker URL {name}={value!r} must not be negative")
    return int(number) if integer else number


def _quote_vhost(vhost: str) -> str:
    return vhost.replace("%", "%25").replace("/", "%2F")


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _redact_schemeless(url: str) -> str:
    """``user:password@host`` typed without a scheme: hide what lies between ':' and '@'."""
    at = url.rfind("@")
    colon = url.find(":")
    if 0 <= colon < at:
        return url[:colon] + ":****" + url[at:]
    return url


def redact_url(text: str) -> str:
    """Replace the password of any ``scheme://user:password@`` in *text* with ``****``."""
    out: list[str] = []
    rest = text
    while True:
        idx = rest.find("://")
        if idx < 0:
            out.append(rest)
            break
        out.append(rest[: idx + 3])
        rest = rest[idx + 3 :]
        at = rest.find("@")
        stop = min(
            (i for i in (rest.find("/"), rest.find(" "), rest.find(";")) if i >= 0),
            default=len(rest),
        )
        if 0 <= at < stop or (at >= 0 and stop == len(rest)):
            userinfo = rest[:at]
            user, sep, _ = userinfo.partition(":")
            out.append(user + (":****" if sep else "") + "@")
            rest = rest[at + 1 :]
    return "".join(out)
