"""Translate pika's exceptions into amqptool's error tree, at one boundary."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions as pex
from pika.adapters.utils.connection_workflow import (
    AMQPConnectorException,
    AMQPConnectorStackTimeout,
)

from amqptool.errors import (
    AmqpToolError,
    AuthenticationError,
    BrokerError,
    ChannelClosedError,
    ConnectionFailedError,
    PublishError,
)

__all__ = ["UnroutableError", "translate", "translate_connect", "translate_errors"]

_REPLY_NAMES = {
    200: "REPLY_SUCCESS",
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}


class UnroutableError(PublishError):
    """A mandatory message the broker could not route to any queue (basic.return)."""


def reply_name(code: int | None) -> str:
    return _REPLY_NAMES.get(code or 0, str(code))


def _clean_text(text: str) -> str:
    # keep the broker's text whole: "NOT_FOUND - no queue 'x' in vhost '/'"
    return text.strip()


def translate(exc: BaseException, *, where: str | None = None) -> AmqpToolError:
    """The amqptool error for a pika (or socket) exception."""
    if isinstance(exc, AmqpToolError):
        return exc
    prefix = f"{where}: " if where else ""
    if isinstance(exc, pex.ChannelClosed):
        code, text = exc.reply_code, _clean_text(str(exc.reply_text))
        return ChannelClosedError(f"{prefix}{code} {text}", reply_code=code, reply_text=text)
    if isinstance(exc, pex.UnroutableError | pex.NackError):
        what = "unroutable" if isinstance(exc, pex.UnroutableError) else "nacked by the broker"
        return UnroutableError(f"{prefix}message {what}", reply_code=312, reply_text="NO_ROUTE")
    if isinstance(exc, pex.ProbableAuthenticationError | pex.AuthenticationError):
        return AuthenticationError(
            f"{prefix}broker refused the credentials", hint="check the user name and password"
        )
    if isinstance(exc, pex.ProbableAccessDeniedError):
        return AuthenticationError(
            f"{prefix}broker refused access to the vhost",
            hint="check the vhost and the user's permissions",
        )
    if isinstance(exc, pex.ConnectionClosed):
        code, text = exc.reply_code, _clean_text(str(exc.reply_text))
        if code in (403, 530):
            return AuthenticationError(f"{prefix}broker refused the connection: {code} {text}")
        return ConnectionFailedError(f"{prefix}connection closed by the broker: {code} {text}")
    if isinstance(exc, pex.AMQPHeartbeatTimeout | pex.StreamLostError):
        return ConnectionFailedError(f"{prefix}connection to the broker lost: {exc}")
    if isinstance(exc, pex.AMQPConnectionError):
        detail = str(exc) or type(exc).__name__
        if exc.args and isinstance(exc.args[0], BaseException):
            detail = _detail(exc.args[0])
        if "SSL" in detail or "certificate" in detail.lower():
            return ConnectionFailedError(
                f"{prefix}TLS handshake with the broker failed: {_short(detail)}",
                hint="check --ssl-ca and the server certificate",
            )
        return ConnectionFailedError(f"{prefix}cannot connect to the broker: {_short(detail)}")
    if isinstance(exc, ssl.SSLError):
        return ConnectionFailedError(
            f"{prefix}TLS error: {exc}", hint="check --ssl-ca and the server certificate"
        )
    if isinstance(exc, socket.gaierror):
        return ConnectionFailedError(f"{prefix}cannot resolve the broker host: {exc}")
    if isinstance(exc, OSError):
        return ConnectionFailedError(f"{prefix}cannot connect to the broker: {exc}")
    if isinstance(exc, pex.AMQPChannelError | pex.ChannelError):
        return BrokerError(f"{prefix}channel error: {exc}")
    if isinstance(exc, pex.AMQPError):
        return BrokerError(f"{prefix}{type(exc).__name__}: {exc}")
    return AmqpToolError(f"{prefix}{type(exc).__name__}: {exc}")


_PORT_HINT = "RabbitMQ's AMQP port is 5672, or 5671 with amqps://"


def translate_connect(exc: BaseException, where: str, address: str) -> AmqpToolError:
    """The error for a failed connect: a peer that does not speak AMQP is named as such."""
    if isinstance(exc, AMQPConnectorStackTimeout) or (
        isinstance(exc, pex.AMQPConnectionError)
        and exc.args
        and isinstance(exc.args[0], AMQPConnectorStackTimeout)
    ):
        return ConnectionFailedError(
            f"handshake timed out: {address} does not speak AMQP", hint=_PORT_HINT
        )
    if isinstance(exc, pex.IncompatibleProtocolError | pex.StreamLostError):
        return ConnectionFailedError(
            f"{address} closed the connection during the AMQP handshake: it does not speak "
            "AMQP 0-9-1 (or it refused this client)",
            hint=_PORT_HINT,
        )
    if isinstance(exc, AMQPConnectorException):
        return ConnectionFailedError(f"{where}: cannot connect to the broker: {_detail(exc)}")
    return translate(exc, where=where)


def _detail(exc: BaseException) -> str:
    """The innermost cause: pika's connector errors wrap it in ``.exception`` and print ''."""
    inner = getattr(exc, "exception", None)
    if isinstance(inner, BaseException) and inner is not exc:
        return _detail(inner)
    return str(exc) or type(exc).__name__


def _short(detail: str) -> str:
    return detail.replace("\n", " ")[:300]


@contextmanager
def translate_errors(where: str | None = None) -> Iterator[None]:
    """Re-raise pika/socket errors as amqptool errors (keeping the original as cause)."""
    try:
        yield
    except AmqpToolError:
        raise
    except (pex.AMQPError, pex.ChannelError, OSError, ssl.SSLError) as exc:
        raise translate(exc, where=where) from exc
