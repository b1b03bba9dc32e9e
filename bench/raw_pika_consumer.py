"""Plain pika, nothing of amqptool: consume N messages from a queue, ack each, print seconds.

Used by ``bench_worker`` as the ceiling of a pika-based consumer (run in its own process, so
none of amqptool's pika patches apply). Prints the seconds between the first and last delivery.

Run: ``python bench/raw_pika_consumer.py URL QUEUE COUNT PREFETCH``.
"""

from __future__ import annotations

import sys
import time

import pika


def main(url: str, queue: str, count: int, prefetch: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    stamps: list[float] = []
    seen = 0

    def on_message(channel: object, method: object, properties: object, body: bytes) -> None:
        nonlocal seen
        ch.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]  # pika's Basic.Deliver
        seen += 1
        if seen in (1, count):
            stamps.append(time.perf_counter())
        if seen == count:
            ch.stop_consuming()

    ch.basic_consume(queue, on_message)
    ch.start_consuming()
    conn.close()
    return stamps[-1] - stamps[0]


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
