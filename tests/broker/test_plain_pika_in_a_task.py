"""Task code that uses plain pika inside our worker gets stock pika, not ours.

The worker's connections keep floats in headers, decode tables fast and join sends, but only on
those connections: pika's module functions, classes and loggers stay as pika ships them.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

from tests.harness import ROOT
from tests.worker_support import Collector, WorkerProcess, publish_task


def stock_pika(url: str) -> Any:
    """The same observations in an interpreter that imports nothing of ours but the probe."""
    code = (
        "import json, sys\n"
        "from tests.peers.pika_tasks import observe\n"
        "print(json.dumps(observe(sys.argv[1])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_task_using_plain_pika_sees_stock_pika(broker_url: str) -> None:
    args = ("-A", "tests.peers.pika_tasks", "-P", "threads", "-l", "INFO")
    with Collector(broker_url) as replies, WorkerProcess(broker_url, *args) as wp:
        msg = publish_task(broker_url, wp.queue, "pika.observe", broker_url, reply_to=replies.name)
        inside = replies.wait_result(msg.id, "SUCCESS", timeout=30)["result"]
    assert inside == stock_pika(broker_url)
    assert inside["encode_float"] == "UnsupportedAMQPFieldException"  # pika cannot write one
    assert inside["decode_double"] == {"x": 2}  # and truncates a double it reads
    assert set(inside["logger_levels"].values()) == {logging.NOTSET}  # not forced to CRITICAL
    assert all(name.startswith("pika.") for name in inside["functions"])
    assert inside["round_trip"] == ["pika.spec", "BasicProperties"]
    assert inside["round_trip_headers"] == {"n": 7} and inside["round_trip_body"] == "hi"
