"""Result backend URLs: which backend a URL names, and its printable (redacted) form."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from amqptool.backends.meta import DEFAULT_EXPIRES, Codec
from amqptool.errors import UsageError

if TYPE_CHECKING:
    from amqptool.backends.base import Backend

__all__ = ["SCHEMES", "backend_from_url", "is_rpc", "redact"]

SCHEMES = ("rpc://", "redis://", "rediss://", "db+postgresql://", "db+mysql://", "db+sqlite://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def redact(url: str) -> str:
    """The URL with its password replaced by ``****``."""
    return _PASSWORD.sub(r"\1****@", url)


def is_rpc(url: str | None) -> bool:
    """True for the broker-backed ``rpc://`` backend (the default when nothing is set)."""
    return not url or url.split("://", 1)[0].lower() == "rpc"


def backend_from_url(
    url: str,
    *,
    serializer: str = "json",
    accept: Collection[str] | None = None,
    expires: float | None = DEFAULT_EXPIRES,
) -> Backend:
    """The backend for a Redis or SQL URL; UsageError (exit 2) for anything else.

    Nothing connects here: call ``check()`` to reach it.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    codec = Codec(serializer, accept)
    if scheme in ("redis", "rediss"):
        from amqptool.backends.redis import RedisBackend

        return RedisBackend(url, codec=codec, expires=expires)
    if scheme.startswith("db+"):
        from amqptool.backends.sql import SqlBackend

        return SqlBackend(url, codec=codec, expires=expires)
    if scheme == "rpc":
        raise UsageError("rpc:// results travel over the broker, not through a stored backend")
    raise UsageError(
        f"unknown result backend URL {redact(url)!r}",
        hint="use rpc://, redis://host:port/db, rediss://..., db+postgresql://..., "
        "db+mysql://... or db+sqlite:///path",
    )
