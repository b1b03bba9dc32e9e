"""The one error tree of amqptool and its exit-code contract.

::

    AmqpToolError                 exit 1  (a command failed)
    ├── UsageError                exit 2  (bad arguments or input)
    │   └── SettingsError         exit 2  (bad broker URL or TLS option)
    ├── DecodeError               exit 1  (a message/body that does not decode)
    ├── BrokerError               exit 1  (the broker refused an operation; keeps reply code/text)
    │   └── ChannelClosedError    exit 1  (404, 406, 403 ... closed the channel)
    ├── NoReplyError              exit 69 (nobody answered, Celery's EX_UNAVAILABLE)
    ├── TaskTimeoutError          exit 1  (a result did not arrive in time)
    └── ConnectionFailedError     exit 70 (cannot reach or lost the broker)
        └── AuthenticationError   exit 71 (the broker refused our credentials / vhost)

Every front end catches ``AmqpToolError`` at its edge, prints ``error: <message>`` (plus a hint
when there is one) on stderr and exits with ``exc.exit_code``. Tracebacks only with ``--debug``.
This module is part of the pure core: it imports nothing from pika, textual or prompt_toolkit.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "AmqpToolError",
    "AuthenticationError",
    "BlockedError",
    "BrokerError",
    "ChannelClosedError",
    "ConnectionFailedError",
    "DecodeError",
    "ExitCode",
    "MessageTooLargeError",
    "NoReplyError",
    "PublishError",
    "SettingsError",
    "TaskTimeoutError",
    "UnconfirmedError",
    "UsageError",
]


class ExitCode(IntEnum):
    """Process exit codes shared by every amqptool subcommand."""

    OK = 0
    FAILED = 1  # a command failed, e.g. the broker refused an operation
    USAGE = 2  # usage error or bad input
    NO_REPLY = 69  # nobody answered (same number Celery uses: EX_UNAVAILABLE)
    CONNECTION = 70  # cannot connect to the broker / connection lost
    AUTH = 71  # the broker refused our credentials or the vhost

    @classmethod
    def describe(cls) -> str:
        """One line per code, for ``--help`` epilogs."""
        return (
            "exit codes: 0 ok; 1 command failed (broker refused an operation, or a worker "
            "replied with an error); 2 usage or bad input; 69 nobody answered; 70 cannot "
            "connect to the broker; 71 broker refused the credentials or vhost"
        )


class AmqpToolError(Exception):
    """Base of every error amqptool reports to a user."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def user_line(self) -> str:
        """The single line shown to a user (without the ``error:`` prefix)."""
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(AmqpToolError):
    """Bad command-line arguments or bad input."""

    exit_code = ExitCode.USAGE


class SettingsError(UsageError):
    """A bad broker URL or connection option. The message names the bad part."""


class DecodeError(AmqpToolError):
    """A message body, header table or content type that cannot be decoded."""


class BrokerError(AmqpToolError):
    """The broker refused an operation. Keeps AMQP's reply code and text."""

    def __init__(
        self,
        message: str,
        *,
        reply_code: int | None = None,
        reply_text: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reply_code = reply_code
        self.reply_text = reply_text


class ChannelClosedError(BrokerError):
    """The broker closed the channel (404 NOT_FOUND, 406 PRECONDITION_FAILED, ...)."""


class NoReplyError(AmqpToolError):
    """Nobody answered within the time allowed."""

    exit_code = ExitCode.NO_REPLY


class PublishError(BrokerError):
    """The broker did not take a message: nacked, returned (``mandatory``), or refused."""


class MessageTooLargeError(PublishError):
    """A message bigger than the broker accepts (its ``max_message_size``); never sent."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, size: int, limit: int, hint: str | None = None) -> None:
        super().__init__(message, reply_code=406, reply_text="PRECONDITION_FAILED", hint=hint)
        self.size = size
        self.limit = limit


class UnconfirmedError(NoReplyError):
    """A publish the broker did not confirm in time: it may or may not have gone through."""


class BlockedError(UnconfirmedError):
    """The broker is blocking publishers (a memory or disk alarm): nothing moves until it ends.

    ``unknown`` is true when a message was handed to the broker but not confirmed, so whether it
    went through cannot be known (a retry may publish it twice).
    """

    def __init__(self, reason: str, *, unknown: bool = False, hint: str | None = None) -> None:
        msg = f"the broker is blocking publishers ({reason})"
        if unknown:
            msg += "; the message was sent but not confirmed: it may or may not have gone through"
        super().__init__(msg, hint=hint)
        self.reason = reason
        self.unknown = unknown


class TaskTimeoutError(AmqpToolError, TimeoutError):
    """A task result did not arrive within the timeout."""


class ConnectionFailedError(AmqpToolError):
    """The broker cannot be reached, or the connection was lost."""

    exit_code = ExitCode.CONNECTION


class AuthenticationError(ConnectionFailedError):
    """The broker refused the credentials or access to the vhost."""

    exit_code = ExitCode.AUTH
