"""Property-based, against a live worker: any control command with any arguments gets a reply
or a one-line error, and the worker goes on.

``amqptool control raw METHOD KEY=VALUE ...`` sends what the fuzzer makes (known and unknown
methods, arguments of every JSON type) to one worker subprocess; commands that would legitimately
take the worker down or balloon it (shutdown, pool_grow, pool_restart, cancel_consumer) are in its
``--disable-control`` list, so the fuzzer also checks they are refused. Afterwards the worker is
still up, answers ping and runs tasks, and its log has no traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from amqptool import cli
from amqptool.control.command_table import all_names
from amqptool.errors import ExitCode
from tests.harness import unique
from tests.load import DrillWorker, ResultTally, push_tasks, record_figures, workers

pytestmark = [pytest.mark.slow]

DISABLED = ("shutdown", "pool_grow", "pool_restart", "cancel_consumer")
CONTRACT = {int(code) for code in ExitCode}
SENT = {"count": 0}


@pytest.fixture(scope="module")
def live_worker(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillWorker]:
    log_dir = tmp_path_factory.mktemp("control-fuzz")
    worker = DrillWorker(
        broker_url,
        unique("relia-ctl"),
        *("-P", "threads", "-c", "2", "-E", "--disable-control", ",".join(DISABLED)),
        log_dir=Path(log_dir),
    )
    with workers(worker):
        yield worker


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse on a malformed line
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue(), err.getvalue()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
keys = st.sampled_from(
    [
        "task_id",
        "task_name",
        "rate_limit",
        "n",
        "queue",
        "signal",
        "terminate",
        "soft",
        "hard",
        "safe",
        "ids",
        "taskinfoitems",
        "with_defaults",
        "from_node",
        "revoked",
        "clock",
        "exchange",
        "routing_key",
        "exchange_type",
        "options",
        "headers",
        "max",
        "min",
        "modules",
        "reload",
    ]
) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(sorted(all_names())) | st.text(max_size=10),
    arguments=st.dictionaries(keys, json_values, max_size=3),
)
def test_any_control_request_gets_a_reply_or_one_error_line(
    broker_url: str, live_worker: DrillWorker, method: str, arguments: dict[str, Any]
) -> None:
    pairs = [f"{k}={json.dumps(v)}" for k, v in arguments.items()]
    argv = ["control", "-b", broker_url, "-t", "1", "-d", live_worker.nodename, "--json"]
    code, out, err = run_cli([*argv, "raw", "--", method, *pairs])
    SENT["count"] += 1
    event(f"exit {code}")
    assert code in CONTRACT, (code, err)
    assert "Traceback" not in err + out and "internal error" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) <= 1, err
    if code == 0 and out.strip():
        replies = json.loads(out)
        assert set(replies) <= {live_worker.nodename}
    assert live_worker.alive


def test_after_the_fuzz_the_worker_is_up_and_runs_tasks(
    broker_url: str, live_worker: DrillWorker
) -> None:
    argv = ["control", "-b", broker_url, "-d", live_worker.nodename, "--json"]
    code, out, _err = run_cli([*argv, "ping"])
    assert code == 0 and json.loads(out) == {live_worker.nodename: {"ok": "pong"}}
    for name in DISABLED:  # refused, never run
        code, out, _err = run_cli([*argv, "raw", name])
        if name != "shutdown" or out.strip():
            assert code == 1
            assert "disabled on this worker" in json.loads(out)[live_worker.nodename]["error"]
    with ResultTally(broker_url) as tally:
        ids = push_tasks(broker_url, live_worker.queue, "relia.mark", [(7,)], reply_to=tally.queue)
        tally.wait_all(ids, timeout=20)
    log = live_worker.output()
    assert live_worker.alive and live_worker.starts == 1
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
    record_figures("control_fuzz_live", {"control_requests_fuzzed": SENT["count"]})
