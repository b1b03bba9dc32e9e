"""Execute parsed shell commands on a transport channel; broker errors land on their command.

The runner owns one connection and one channel (in publisher-confirm mode). Before each
command it checks the connection (a cheap non-blocking poll) and reconnects, saying so, if it
was lost. After a channel error the next command gets a new channel, and the error says
what state went with the old one (unacknowledged messages, prefetch). ``basic.ack``,
``nack`` and ``reject`` are followed by a synchronous ``basic.qos`` so an unknown delivery
tag fails *that* command, not the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import (
    AmqpToolError,
    BlockedError,
    BrokerError,
    ChannelClosedError,
    ConnectionFailedError,
    NoReplyError,
    UsageError,
)
from amqptool.shell.bodies import is_utf8, read_body
from amqptool.shell.core.names import KnownNames
from amqptool.shell.core.outcome import Deleted, Done, Got, QueueStats, Value
from amqptool.shell.core.parser import ParsedCommand
from amqptool.shell.core.ports import ChannelLike, ConnectionLike
from amqptool.shell.watchdog import DEFAULT_TIMEOUT, CommandTimeout, Watchdog

if TYPE_CHECKING:
    from amqptool.shell.core.messages import MessageView

__all__ = ["PUBLISH_TIMEOUT", "Notify", "OnMessage", "Runner"]

# Longest wait for the broker to confirm one message of the message tools (move, import);
# basic.publish waits as long as the command's --timeout.
PUBLISH_TIMEOUT = 10.0

Notify = Callable[[str], None]
OnMessage = Callable[["MessageView"], None]


class Runner:
    """Runs commands; raises :class:`AmqpToolError` subclasses, never anything else."""

    def __init__(
        self,
        connection: ConnectionLike,
        *,
        names: KnownNames | None = None,
        notify: Notify | None = None,
        describe: str = "the broker",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.connection = connection
        self.watchdog = Watchdog(timeout)
        self.names = names or KnownNames()
        self.notify: Notify = notify or (lambda _text: None)
        self.describe = describe
        self._channel: ChannelLike | None = None
        self._connected_once = False
        self._lost_reason: str | None = None
        self.connect_failed = False
        self.unacked: set[int] = set()
        self.progress: Notify | None = None  # long operations report here (on a terminal)
        self.stdin_is_commands = False  # basic.publish @- cannot read the command stream
        self.qos_state: dict[bool, int] = {False: 0, True: 0}

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Connect (``connect_failed`` says whether the broker could not be reached)."""
        try:
            self.connection.connect()
        except AmqpToolError as exc:
            self.connect_failed = True
            if exc.hint is None and isinstance(exc, ConnectionFailedError):
                exc.hint = "is the broker running, and is the URL right?"
            raise
        self.connect_failed = False
        self._connected_once = True
        self._channel = None
        self.describe = self.connection.connected_to()

    def close(self) -> None:
        self._channel = None
        self.connection.close()

    def reset(self, reason: str) -> None:
        """Drop the connection (its state is unknown); the next command reconnects."""
        self._lost_reason = reason
        self._channel = None
        self.connection.close()

    def abort(self, reason: str) -> None:
        """Drop the connection at once, without waiting for the broker (it may not answer)."""
        self._lost_reason = reason
        self._channel = None
        self.connection.abort()

    def keepalive(self) -> None:
        """Between commands: let the transport send and check heartbeats (never raises)."""
        if not self.connection.is_open:
            return
        try:
            self.connection.process_events(0)
        except AmqpToolError as exc:
            self._lost_reason = exc.message
            self.connection.abort()
        except Exception as exc:  # the prompt must survive anything pika raises here
            self._lost_reason = f"{type(exc).__name__} while idle"
            self.connection.abort()

    def _ensure(self) -> ChannelLike:
        if self._connected_once and self.connection.is_open:
            try:
                self.connection.process_events(0)
            except ConnectionFailedError as exc:
                self._lost_reason = exc.message
                self.connection.close()
        if not self.connection.is_open:
            if self._connected_once:
                reason = self._lost_reason or "connection closed"
                self.notify(f"-> connection lost ({reason}); reconnecting to {self.describe}.")
                note = self._state_note()
                self.connect()
                self.notify("-> reconnected." + (f" ({note})" if note else ""))
            else:
                self.connect()
            self._lost_reason = None
            self._forget_channel_state()
        if self._channel is None or not self._channel.is_open:
            self._channel = self.connection.channel(confirm=True)
            self._forget_channel_state()
        return self._channel

    def _forget_channel_state(self) -> None:
        self.unacked.clear()
        self.qos_state = {False: 0, True: 0}

    def _state_note(self) -> str:
        parts = []
        if self.unacked:
            n = len(self.unacked)
            parts.append(
                f"{n} unacknowledged message{'s' if n != 1 else ''} went back to "
                f"{'their queues' if n != 1 else 'its queue'}; delivery tags restart at 1"
            )
        if any(self.qos_state.values()):
            parts.append("prefetch reset to 0")
        return "channel state lost: " + ", ".join(parts) if parts else ""

    # ------------------------------------------------------------------ execution

    def execute(
        self,
        cmd: ParsedCommand,
        *,
        on_message: OnMessage | None = None,
        warn: Notify | None = None,
    ) -> Value:
        handler = _HANDLERS.get(cmd.name)
        if handler is None:
            raise UsageError(f"{cmd.name}: not a broker command")
        warn = warn or (lambda _text: None)
        try:
            with self.watchdog.guard():
                ch = self._ensure()
                return handler(self, ch, cmd, on_message or (lambda _m: None), warn)
        except CommandTimeout:
            blocked = getattr(self.connection, "blocked_reason", None)
            self.abort(f"no answer within {self.watchdog.seconds:g} s")
            if isinstance(blocked, str):  # it stopped reading us: say why, not "no answer"
                raise BlockedError(blocked, unknown=cmd.name == "basic.publish") from None
            raise NoReplyError(
                f"{cmd.name}: the broker did not answer within {self.watchdog.seconds:g} s",
                hint="the connection was dropped and is reopened by the next command; "
                "--timeout S changes the limit",
            ) from None
        except KeyboardInterrupt:
            self.abort("interrupted")
            raise
        except ChannelClosedError as exc:
            raise self._channel_failed(cmd, exc) from exc
        except ConnectionFailedError as exc:
            raise self._connection_failed(cmd, exc) from exc
        except AmqpToolError:
            raise
        except Exception as exc:  # a transport leak must not kill the shell: report, reset
            self.reset(f"{type(exc).__name__} in {cmd.name}")
            raise AmqpToolError(
                f"{cmd.name}: internal error: {type(exc).__name__}: {exc}",
                hint="the connection was reset",
            ) from exc

    def _channel_failed(self, cmd: ParsedCommand, exc: ChannelClosedError) -> ChannelClosedError:
        """The broker closed the channel: report it on ``cmd``; a new channel comes next time."""
        code, text = _reply(exc)
        note = self._state_note()
        self._channel = None
        self._forget_channel_state()
        return ChannelClosedError(
            f"{cmd.name}: {code} {text}",
            reply_code=code,
            reply_text=text,
            hint=f"the channel was closed; {note}" if note else None,
        )

    def _connection_failed(self, cmd: ParsedCommand, exc: ConnectionFailedError) -> AmqpToolError:
        code, text = _reply(exc)
        self.reset(exc.message)
        if code is not None and code != 320:
            self._lost_reason = f"closed by the broker after {cmd.name}"
            return BrokerError(
                f"{cmd.name}: {code} {text}",
                reply_code=code,
                reply_text=text,
                hint="the broker closed the connection; reconnecting before the next command",
            )
        return exc

    def sync(self, ch: ChannelLike) -> None:
        """A synchronous round trip that changes nothing (surfaces async channel errors)."""
        ch.qos(self.qos_state[False], global_qos=False)


def _reply(exc: AmqpToolError) -> tuple[int | None, str]:
    """Reply code and the broker's full text (from the pika cause, read by duck typing)."""
    cause = exc.__cause__
    code = getattr(cause, "reply_code", None) or getattr(exc, "reply_code", None)
    text = getattr(cause, "reply_text", None) or getattr(exc, "reply_text", None) or exc.message
    return (code if isinstance(code, int) else None), str(text).strip()


# ---------------------------------------------------------------------- handlers

Handler = Callable[[Runner, ChannelLike, ParsedCommand, OnMessage, Notify], Value]


def _exchange_declare(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    ch.exchange_declare(
        v["exchange"],
        v["type"],
        passive=v["passive"],
        durable=v["durable"],
        auto_delete=v["auto_delete"],
        internal=v["internal"],
        arguments=c.arguments,
    )
    r.names.add_exchange(v["exchange"])
    return Done()


def _exchange_delete(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    ch.exchange_delete(c.values["exchange"], if_unused=c.values["if_unused"])
    r.names.forget_exchange(c.values["exchange"])
    return Done()


def _exchange_bind(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    bind = ch.exchange_bind if c.name == "exchange.bind" else ch.exchange_unbind
    bind(v["destination"], v["source"], v["routing_key"], c.arguments)
    r.names.add_exchange(v["destination"])
    r.names.add_exchange(v["source"])
    return Done()


def _queue_declare(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    info = ch.queue_declare(
        v["queue"],
        passive=v["passive"],
        durable=v["durable"],
        exclusive=v["exclusive"],
        auto_delete=v["auto_delete"],
        arguments=c.arguments,
    )
    r.names.add_queue(info.name)
    return QueueStats(info.name, info.message_count, info.consumer_count)


def _queue_delete(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    count = ch.queue_delete(v["queue"], if_unused=v["if_unused"], if_empty=v["if_empty"])
    r.names.forget_queue(v["queue"])
    return Deleted(count)


def _queue_purge(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    return Deleted(ch.queue_purge(c.values["queue"]))


def _queue_bind(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    bind = ch.queue_bind if c.name == "queue.bind" else ch.queue_unbind
    bind(v["queue"], v["exchange"], v["routing_key"], c.arguments)
    r.names.add_queue(v["queue"])
    r.names.add_exchange(v["exchange"])
    return Done()


def _publish(r: Runner, ch: ChannelLike, c: ParsedCommand, _m: OnMessage, warn: Notify) -> Value:
    v = c.values
    if v["immediate"]:
        warn("RabbitMQ does not implement 'immediate' (removed in 3.0); published without it")
    body = read_body(v["msg"], stdin_is_commands=r.stdin_is_commands)
    props = Properties(content_type="text/plain", content_encoding="utf-8", headers=dict(c.headers))
    if not is_utf8(body):  # a binary file: say so unless the user did
        props.content_type, props.content_encoding = "application/octet-stream", "binary"
    for name, value in c.properties.items():
        setattr(props, name, value)
    env = Envelope(
        body=body, properties=props, exchange=v["exchange"], routing_key=v["routing_key"]
    )
    try:
        # Always mandatory: an unroutable message comes back, so even without the flag the
        # user hears that nothing received it (a warning, the outcome stays ok).
        # The confirm wait ends with the command's --timeout (a blocked broker: BlockedError).
        ch.publish(env, mandatory=True, timeout=r.watchdog.seconds or None)
    except ChannelClosedError:
        raise
    except BrokerError as exc:
        if exc.reply_code != 312 and exc.reply_text != "NACK":
            raise
        ex, rk = v["exchange"], v["routing_key"]
        reason = (
            f"no queue is bound to exchange {ex!r} with routing key {rk!r}"
            if ex
            else f"no queue is named {rk!r} (the default exchange routes by queue name)"
        )
        if exc.reply_text == "NACK":
            raise BrokerError(
                f"basic.publish: the broker refused the message (exchange {ex!r}, "
                f"routing key {rk!r})",
                hint="a full queue with x-overflow=reject-publish refuses messages",
            ) from exc
        if v["mandatory"]:
            raise BrokerError(
                f"basic.publish: 312 NO_ROUTE - message unroutable: {reason}",
                reply_code=312,
                reply_text="NO_ROUTE",
            ) from exc
        warn(f"the message was not routed to any queue: {reason}")
    if v["exchange"]:
        r.names.add_exchange(v["exchange"])
    return Done()


def _get(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    env = ch.get(c.values["queue"], no_ack=c.values["no_ack"])
    r.names.add_queue(c.values["queue"])
    if env is None:
        return Got(None)
    r.names.add_exchange(env.exchange)
    if not c.values["no_ack"] and env.delivery_tag is not None:
        r.unacked.add(env.delivery_tag)
    from amqptool.shell.core.messages import view_message  # the codec loads only when needed

    return Got(view_message(env))


def _settle(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    v = c.values
    tag = v["delivery_tag"]
    multiple = v.get("multiple", False)
    if c.name == "basic.ack":
        ch.ack(tag, multiple=multiple)
    elif c.name == "basic.nack":
        ch.nack(tag, multiple=multiple, requeue=v["requeue"])
    else:
        ch.reject(tag, requeue=v["requeue"])
    r.sync(ch)  # an unknown tag closes the channel: the error lands on this command
    if multiple:
        r.unacked = {t for t in r.unacked if tag and t > tag}
    else:
        r.unacked.discard(tag)
    return Done()


def _recover(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    if not c.values["requeue"]:
        raise UsageError(
            "basic.recover: RabbitMQ implements only requeue=yes (requeue=no closes the connection)"
        )
    ch.recover(requeue=True)
    r.unacked.clear()
    return Done()


def _qos(r: Runner, ch: ChannelLike, c: ParsedCommand, *_: Any) -> Value:
    count, is_global = c.values["prefetch_count"], c.values["global"]
    ch.qos(count, global_qos=is_global)
    r.qos_state[is_global] = count
    return Done()


def _consume(
    r: Runner, ch: ChannelLike, c: ParsedCommand, on_message: OnMessage, warn: Notify
) -> Value:
    from amqptool.shell.consume import consume  # the codec loads only when needed

    r.names.add_queue(c.values["queue"])
    return consume(r, ch, c, on_message, warn)


def _tool(name: str) -> Handler:
    def run(r: Runner, ch: ChannelLike, c: ParsedCommand, m: OnMessage, w: Notify) -> Value:
        from amqptool.shell import tools  # the message tools load only when used

        handler: Handler = getattr(tools, name)
        return handler(r, ch, c, m, w)

    return run


_HANDLERS: dict[str, Handler] = {
    "queue.export": _tool("export"),
    "queue.import": _tool("import_"),
    "queue.move": _tool("move"),
    "exchange.tap": _tool("tap"),
    "exchange.declare": _exchange_declare,
    "exchange.delete": _exchange_delete,
    "exchange.bind": _exchange_bind,
    "exchange.unbind": _exchange_bind,
    "queue.declare": _queue_declare,
    "queue.delete": _queue_delete,
    "queue.purge": _queue_purge,
    "queue.bind": _queue_bind,
    "queue.unbind": _queue_bind,
    "basic.publish": _publish,
    "basic.get": _get,
    "basic.ack": _settle,
    "basic.nack": _settle,
    "basic.reject": _settle,
    "basic.recover": _recover,
    "basic.qos": _qos,
    "basic.consume": _consume,
}
