"""The shell's one command registry: names, signatures with defaults, types and help.

Help text, argument validation, completion and "did you mean" are all generated from
:data:`COMMANDS`. Argument order and defaults follow camqadm (Celery 1.0/2.x); the commands
camqadm never had are added after them. Pure: imports nothing from pika or prompt_toolkit.
"""

from __future__ import annotations

from amqptool.shell.core.spec import IDLE_TIMEOUT, ArgKind, ArgSpec, CommandSpec, OptionGroup, flag
from amqptool.shell.core.toolspecs import TOOL_SPECS
from amqptool.shell.core.vocab import ACK_MODES

__all__ = [
    "ALIASES",
    "COMMANDS",
    "ArgKind",
    "ArgSpec",
    "CommandSpec",
    "OptionGroup",
    "did_you_mean",
    "lookup",
    "matches_command",
]


_BOOL = ArgKind.BOOL
_flag = flag


_Q = frozenset({OptionGroup.QUEUE_ARGS})
_X = frozenset({OptionGroup.EXCHANGE_ARGS})
_B = frozenset({OptionGroup.BIND_ARGS})
_P = frozenset({OptionGroup.PROPERTIES})
_C = frozenset({OptionGroup.CONSUME_ARGS})
_TAG = ArgSpec(
    "delivery_tag", ArgKind.INT, None, "tag from basic.get/consume", minimum=0, maximum=2**64 - 1
)
_REQUEUE = _flag("requeue", "put the message back in its queue (no: drop or dead-letter)", "yes")
_MULTIPLE = _flag("multiple", "also every earlier unacknowledged tag on this channel")

_SPECS = (
    CommandSpec(
        "exchange.declare",
        (
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "name of the exchange"),
            ArgSpec("type", ArgKind.EXCHANGE_TYPE, None, "direct, topic, fanout, headers, x-..."),
            _flag("passive", "only check that it exists"),
            _flag("durable", "survive a broker restart"),
            _flag("auto_delete", "delete when the last binding is removed"),
            _flag("internal", "only other exchanges may publish to it"),
        ),
        "Declare an exchange.",
        _X,
    ),
    CommandSpec(
        "exchange.delete",
        (
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "name of the exchange"),
            _flag("if_unused", "only if it has no bindings"),
        ),
        "Delete an exchange.",
    ),
    CommandSpec(
        "exchange.bind",
        (
            ArgSpec("destination", ArgKind.EXCHANGE, None, "exchange that receives"),
            ArgSpec("source", ArgKind.EXCHANGE, None, "exchange that routes to it"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, "", "binding key"),
        ),
        "Bind an exchange to another exchange.",
        _B,
    ),
    CommandSpec(
        "exchange.unbind",
        (
            ArgSpec("destination", ArgKind.EXCHANGE, None, "exchange that receives"),
            ArgSpec("source", ArgKind.EXCHANGE, None, "exchange that routes to it"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, "", "binding key"),
        ),
        "Remove an exchange-to-exchange binding.",
        _B,
    ),
    CommandSpec(
        "queue.declare",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue ('' lets the broker name it)"),
            _flag("passive", "only check that it exists (and show its counts)"),
            _flag("durable", "survive a broker restart"),
            _flag("exclusive", "only this connection may use it; deleted when it closes"),
            _flag("auto_delete", "delete when the last consumer goes"),
        ),
        "Declare a queue; prints its message and consumer counts.",
        _Q,
    ),
    CommandSpec(
        "queue.delete",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),
            _flag("if_unused", "only if it has no consumers"),
            _flag("if_empty", "only if it holds no messages"),
        ),
        "Delete a queue and its bindings; prints how many messages went with it.",
    ),
    CommandSpec(
        "queue.bind",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "exchange to bind to"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, "", "binding key"),
        ),
        "Bind a queue to an exchange.",
        _B,
    ),
    CommandSpec(
        "queue.unbind",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "exchange it is bound to"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, "", "binding key"),
        ),
        "Remove a queue binding.",
        _B,
    ),
    CommandSpec(
        "queue.purge",
        (ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),),
        "Delete every ready message of a queue.",
    ),
    CommandSpec(
        "basic.publish",
        (
            ArgSpec("msg", ArgKind.BODY, None, "message body (quote it)"),
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "exchange ('' is the default exchange)"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, None, "routing key"),
            _flag("mandatory", "fail if no queue receives it"),
            _flag("immediate", "not implemented by RabbitMQ (accepted, ignored)"),
        ),
        "Publish a message (with publisher confirms).",
        _P,
        details="Unless content_type is given the body is sent as text/plain, utf-8.",
    ),
    CommandSpec(
        "basic.get",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),
            _flag("no_ack", "remove the message without a basic.ack", "off"),
        ),
        "Fetch one message: body, delivery info and properties.",
    ),
    CommandSpec(
        "basic.ack",
        (_TAG, _MULTIPLE),
        "Acknowledge a message (an unknown tag is reported here).",
    ),
    CommandSpec(
        "basic.nack",
        (_TAG, _REQUEUE, _MULTIPLE),
        "Negatively acknowledge a message.",
    ),
    CommandSpec(
        "basic.reject",
        (_TAG, _REQUEUE),
        "Reject a message.",
    ),
    CommandSpec(
        "basic.recover",
        (ArgSpec("requeue", _BOOL, "yes", "RabbitMQ implements only requeue=yes"),),
        "Redeliver every unacknowledged message of this channel.",
    ),
    CommandSpec(
        "basic.qos",
        (
            ArgSpec(
                "prefetch_count",
                ArgKind.INT,
                None,
                "unacknowledged messages a consumer may hold (0: no limit)",
                minimum=0,
                maximum=65535,
            ),
            _flag("global", "share the limit across the channel's consumers"),
        ),
        "Set the prefetch window of this channel.",
    ),
    CommandSpec(
        "basic.consume",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "name of the queue"),
            ArgSpec(
                "count",
                ArgKind.INT,
                "10",
                "stop after this many messages",
                minimum=1,
                maximum=65535,
            ),
            IDLE_TIMEOUT,
            ArgSpec(
                "mode",
                ArgKind.CHOICE,
                "ack",
                "ack: remove them (no_ack is the same); peek: put them back at the end; "
                "manual: leave them unacknowledged for basic.ack/nack/reject",
                choices=ACK_MODES,
            ),
        ),
        "Consume (tail) a queue, printing each message; Ctrl-C stops early.",
        _C,
        details="With --json the messages come in the command's one document, at the end.",
    ),
    CommandSpec(
        "help",
        (ArgSpec("command", ArgKind.COMMAND, "", "a command name"),),
        "List the commands, or show one command's signature and arguments.",
        needs_broker=False,
    ),
    CommandSpec("exit", (), "Leave the shell (Ctrl-D works too).", needs_broker=False),
)

COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (*_SPECS[:-2], *TOOL_SPECS, *_SPECS[-2:])  # help, exit last
}
ALIASES = {"quit": "exit", "EOF": "exit", ":q": "exit", ":exit": "exit", "?": "help"}


def lookup(name: str) -> CommandSpec | None:
    """The command called ``name`` (aliases such as ``quit`` included), or None."""
    return COMMANDS.get(ALIASES.get(name, name))


def matches_command(name: str, prefix: str) -> bool:
    """camqadm's completion rule: a prefix of the name or of the part after the dot."""
    if name.startswith(prefix):
        return True
    _, dot, tail = name.partition(".")
    return bool(dot) and tail.startswith(prefix)


def did_you_mean(word: str) -> list[str]:
    """Close command names for an unknown ``word`` (best first, at most three)."""
    if not word:
        return []
    import difflib  # only for unknown commands

    scores: dict[str, float] = {}
    for name in COMMANDS:
        tail = name.partition(".")[2]
        if matches_command(name, word):
            score = 1.0
        else:
            score = max(
                difflib.SequenceMatcher(None, word, name).ratio(),
                difflib.SequenceMatcher(None, word, tail).ratio() if tail else 0.0,
            )
        scores[name] = score
    best = max(scores.values())
    close = [n for n, s in scores.items() if s >= 0.7 and s >= best - 0.1]
    close.sort(key=lambda n: -scores[n])
    return close[:3]
