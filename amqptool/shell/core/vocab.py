"""The AMQP vocabulary the shell knows: exchange types, typed x-arguments, properties. Pure."""

from __future__ import annotations

__all__ = [
    "ACK_MODES",
    "BIND_XARGS",
    "BOOL_XARGS",
    "CONSUME_XARGS",
    "EXCHANGE_TYPES",
    "EXCHANGE_XARGS",
    "INT_XARGS",
    "MAX_SHORTSTR",
    "PROPERTY_NAMES",
    "PROPERTY_VALUES",
    "QUEUE_XARGS",
    "XARG_VALUES",
]

EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")
ACK_MODES = ("ack", "peek", "manual", "no_ack")
MAX_SHORTSTR = 255

# x-arguments whose value the broker wants as an integer (or a boolean); all others are strings.
INT_XARGS = frozenset(
    {
        "x-message-ttl",
        "x-expires",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-delivery-limit",
        "x-quorum-initial-group-size",
        "x-quorum-target-group-size",
        "x-initial-cluster-size",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-stream-max-segment-size-bytes",
        "x-consumer-timeout",
        "x-priority",
    }
)
BOOL_XARGS = frozenset({"x-single-active-consumer", "x-cancel-on-ha-failover"})
# Suggested values for completion (not a validation list: plugins add more).
XARG_VALUES: dict[str, tuple[str, ...]] = {
    "x-queue-type": ("classic", "quorum", "stream"),
    "x-overflow": ("drop-head", "reject-publish", "reject-publish-dlx"),
    "x-queue-mode": ("default", "lazy"),
    "x-dead-letter-strategy": ("at-most-once", "at-least-once"),
    "x-match": ("all", "any", "all-with-x", "any-with-x"),
    "x-single-active-consumer": ("yes", "no"),
}
QUEUE_XARGS = (
    "x-queue-type",
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-priority",
    "x-delivery-limit",
    "x-single-active-consumer",
    "x-queue-mode",
    "x-quorum-initial-group-size",
    "x-max-age",
)
EXCHANGE_XARGS = ("alternate-exchange", "x-delayed-type")
BIND_XARGS = ("x-match",)
CONSUME_XARGS = ("x-priority", "x-stream-offset")
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "timestamp",
    "user_id",
    "app_id",
)
PROPERTY_VALUES: dict[str, tuple[str, ...]] = {
    "content_type": ("text/plain", "application/json", "application/octet-stream"),
    "content_encoding": ("utf-8", "binary"),
    "delivery_mode": ("1", "2"),
}
