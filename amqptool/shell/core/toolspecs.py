"""Signatures of the shell's listing commands (management API) and message tools. Pure."""

from __future__ import annotations

from amqptool.shell.core.spec import IDLE_TIMEOUT, ArgKind, ArgSpec, CommandSpec, flag

__all__ = ["LISTING_COMMANDS", "TOOL_SPECS"]

_PATTERN = ArgSpec("pattern", ArgKind.STR, "", "glob (*, ?) on the name, or text the name contains")
_COUNT_ALL = "0 (or nothing): every message ready when the command starts"


def _listing(name: str, summary: str) -> CommandSpec:
    return CommandSpec(name, (_PATTERN,), summary, details=_MGMT_NOTE, needs_broker=False)


_MGMT_NOTE = (
    "Read from the management HTTP API (--mgmt-url, default http://HOST:15672 of the broker "
    "URL with its user, password and vhost)."
)

_LISTINGS = (
    _listing("queue.list", "List queues: type, ready, unacked, consumers, rates."),
    _listing("exchange.list", "List exchanges: type, flags, rates."),
    _listing("binding.list", "List bindings (pattern on source or destination)."),
    _listing("consumer.list", "List consumers (pattern on the queue)."),
    _listing("connection.list", "List the vhost's connections."),
    _listing("vhost.list", "List virtual hosts with their message counts."),
    CommandSpec(
        "overview", (), "Cluster, versions and totals.", details=_MGMT_NOTE, needs_broker=False
    ),
)

LISTING_COMMANDS = frozenset(spec.name for spec in _LISTINGS)

_TOOLS = (
    CommandSpec(
        "queue.export",
        (
            ArgSpec("queue", ArgKind.QUEUE, None, "queue to read"),
            ArgSpec("file", ArgKind.STR, None, "JSON-lines file to write ('-': stdout)"),
            ArgSpec("count", ArgKind.INT, "0", _COUNT_ALL, minimum=0, maximum=10**9),
            flag("remove", "acknowledge what was written (default: put every message back)"),
        ),
        "Write messages to JSON lines (body, properties, headers; binary bodies in base64).",
        details=(
            "By default nothing is removed: the messages are held unacknowledged while they are "
            "written, then requeued all at once (on a quorum queue that counts one delivery). "
            "With remove=yes each message is acknowledged only after its line is written."
        ),
    ),
    CommandSpec(
        "queue.import",
        (
            ArgSpec("file", ArgKind.STR, None, "JSON-lines file from queue.export ('-': stdin)"),
            ArgSpec(
                "destination",
                ArgKind.QUEUE,
                None,
                "QUEUE (default exchange), or exchange:NAME to replay the recorded routing keys",
            ),
        ),
        "Publish exported messages again (each one confirmed by the broker).",
    ),
    CommandSpec(
        "queue.move",
        (
            ArgSpec("source", ArgKind.QUEUE, None, "queue to take messages from"),
            ArgSpec("destination", ArgKind.QUEUE, None, "queue to put them in"),
            ArgSpec("count", ArgKind.INT, "0", _COUNT_ALL, minimum=0, maximum=10**9),
        ),
        "Move messages between queues; each is removed only after its copy is confirmed.",
        details="A crash mid-move loses nothing; at worst one message is in both queues.",
    ),
    CommandSpec(
        "exchange.tap",
        (
            ArgSpec("exchange", ArgKind.EXCHANGE, None, "exchange to listen to"),
            ArgSpec("routing_key", ArgKind.ROUTING_KEY, "#", "binding key ('#': all on topic)"),
            ArgSpec("count", ArgKind.INT, "10", "stop after this many", minimum=1, maximum=10**6),
            IDLE_TIMEOUT,
        ),
        "Show copies of what an exchange routes (a temporary exclusive queue; nothing taken).",
    ),
)

TOOL_SPECS = (*_LISTINGS, *_TOOLS)
