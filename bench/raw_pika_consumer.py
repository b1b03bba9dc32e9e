"""Plain pika, nothing of amqptool: consume N messages from a queue, ack them, print seconds.

Used by ``bench_worker`` as the broker-side ceiling of a pika consumer (run in its own process,
so none of amqptool's pika patches apply): ``basic_consume`` with a large prefetch and acks
batched every ``ACK_EVERY`` messages (``multiple=True``). Prints the seconds between the first
and last delivery.

Run: ``python bench/raw_pika_consumer.py URL QUEUE COUNT PREFETCH [ACK_EVERY]``.
"""

from __future__ import annotations

import sys
import time

import pika


def main(url: str, queue: str, count: int, prefetch: int, ack_every: int = 1) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    stamps: list[float] = []
    seen = 0

    def on_message(channel: object, method: object, properties: object, body: bytes) -> None:
        nonlocal seen
        seen += 1
        if seen % ack_every == 0 or seen == count:
            tag = method.delivery_tag  # type: ignore[attr-defined]  # pika's Basic.Deliver
            ch.basic_ack(tag, multiple=ack_every > 1)
        if seen in (1, count):
            stamps.append(time.perf_counter())
        if seen == count:
            ch.stop_consuming()

    ch.basic_consume(queue, on_message)
    ch.start_consuming()
    conn.close()
    return stamps[-1] - stamps[0]


if __name__ == "__main__":
    extra = [int(a) for a in sys.argv[5:6]]
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *extra))
