"""A task that uses plain pika inside our worker (the "no process-wide patching" test).

:func:`observe` is also run in a bare interpreter, where pika is stock, for comparison.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import pika
import pika.data
import pika.exceptions
from pika.adapters.utils import io_services_utils

from worker import task

PIKA_LOGGERS = ("pika", "pika.adapters", "pika.connection", "pika.channel")


def observe(url: str | None = None) -> dict[str, Any]:
    """What plain pika does here: floats in tables, its loggers, a message through the broker."""
    seen: dict[str, Any] = {}
    try:
        pika.BasicProperties(headers={"limit": 2.5}).encode()
        seen["encode_float"] = "encoded"
    except pika.exceptions.UnsupportedAMQPFieldException:
        seen["encode_float"] = "UnsupportedAMQPFieldException"
    table = b"\x01x" + b"d" + struct.pack(">d", 2.5)
    seen["decode_double"] = pika.data.decode_table(struct.pack(">I", len(table)) + table, 0)[0]
    seen["logger_levels"] = {name: logging.getLogger(name).level for name in PIKA_LOGGERS}
    seen["functions"] = [
        f"{f.__module__}.{f.__qualname__}"
        for f in (
            pika.data.decode_table,
            pika.data.encode_table,
            pika.data.decode_value,
            pika.data.encode_value,
            io_services_utils._AsyncTransportBase._produce,
        )
    ]
    if url is not None:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            ch = conn.channel()
            queue = ch.queue_declare("", exclusive=True).method.queue
            ch.basic_publish("", queue, b"hi", pika.BasicProperties(headers={"n": 7}))
            method, props, body = None, None, None
            while method is None:
                method, props, body = ch.basic_get(queue, auto_ack=True)
            seen["round_trip"] = [type(props).__module__, type(props).__qualname__]
            seen["round_trip_headers"] = props.headers
            seen["round_trip_body"] = body.decode()
        finally:
            conn.close()
    return seen


@task(name="pika.observe")
def observe_task(url: str) -> dict[str, Any]:
    return observe(url)
