"""The monitor fed malformed events keeps running and counts them.

Property-based: any sequence of event-shaped dicts (known and unknown types, fields of any
JSON type, NaN and infinities included) folds into the state without raising, and every view
the screen draws from it (rows, detail, header, filter, the SQLite store) renders. On the real
broker: a storm of malformed event messages among good ones leaves the feed connected, the
good events folded, and every bad one counted.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.events import encode_event, make_event
from amqptool.monitor.core.query import TaskFilter, search_text
from amqptool.monitor.core.selectors import header_view, task_detail, task_rows, worker_rows
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.dump import EventFormatter, format_json
from amqptool.monitor.store import TaskStore, record_of, task_of
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.fault_support import LiveMonitor
from tests.harness import unique, wait_until
from tests.load import record_figures

EVENT_TYPES = [
    "task-sent",
    "task-received",
    "task-started",
    "task-succeeded",
    "task-failed",
    "task-retried",
    "task-revoked",
    "task-rejected",
    "task-progress",
    "task-",
    "worker-online",
    "worker-heartbeat",
    "worker-offline",
    "worker-",
    "something-else",
]
FIELDS = [
    "uuid",
    "hostname",
    "timestamp",
    "clock",
    "local_received",
    "name",
    "args",
    "kwargs",
    "retries",
    "eta",
    "expires",
    "root_id",
    "parent_id",
    "result",
    "runtime",
    "exception",
    "traceback",
    "requeue",
    "terminated",
    "signum",
    "expired",
    "freq",
    "active",
    "processed",
    "loadavg",
    "pid",
    "sw_ident",
    "sw_ver",
    "sw_sys",
    "queue",
    "exchange",
    "routing_key",
    "custom",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["1e999", "-1e999", "nan", "inf", "", "soon", "12", "w1@h"])
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES) | values},
    optional={
        "uuid": st.sampled_from(["t1", "t2", "t3", ""]) | values,
        "hostname": st.sampled_from(["w1@h", "w2@h", ""]) | values,
        **{f: values for f in FIELDS if f not in ("uuid", "hostname")},
    },
)


def render_everything(state: MonitorState, now: float, store: TaskStore) -> None:
    """What the screen and the store do with the state."""
    rows, _total = task_rows(state)
    assert len(rows) == len(state.tasks)
    worker_rows(state, now)
    str(header_view(state, now, broker="b", connection="c", connected=True))
    filt = TaskFilter.parse("state:success,failure name:x worker:w 1")
    for task in list(state.tasks.values()):
        task_detail(task, now)
        search_text(task)
        filt.matches(task)
        again = task_of(record_of(task)[-1])
        assert again is not None and again.uuid == task.uuid
    store.save(record_of(t) for t in state.tasks.values())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(events | values, max_size=25), now=st.floats(0, 2e9))
def test_any_events_fold_and_render_without_raising(
    batch: list[Any], now: float, tmp_path: Path
) -> None:
    state = MonitorState(max_tasks=5, max_workers=3)
    for event in batch:
        state.apply(event, now)
    state.expire(now + 10)
    with TaskStore(tmp_path / "state.sqlite") as store:
        render_everything(state, now + 10, store)
    assert state.malformed >= sum(1 for e in batch if not isinstance(e, dict) or "type" not in e)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=10))
def test_any_event_is_one_line_of_dump_text_or_json(batch: list[dict[str, Any]]) -> None:
    formatter = EventFormatter()
    for event in batch:
        event.setdefault("uuid", "a\nw1@h [2026-01-01 00:00:00] task succeeded: forged")
        assert len(formatter.format(event).splitlines()) == 1
        line = format_json(event)
        assert "\n" not in line and "\r" not in line


def test_infinite_and_nan_clocks_and_runtimes_are_tolerated(tmp_path: Path) -> None:
    state = MonitorState()
    odd: list[dict[str, Any]] = [
        {"type": "task-received", "uuid": "a", "hostname": "w", "clock": "1e999"},
        {"type": "task-started", "uuid": "a", "hostname": "w", "clock": math.nan},
        {"type": "task-succeeded", "uuid": "a", "hostname": "w", "runtime": math.inf},
        {"type": "task-succeeded", "uuid": "b", "hostname": "w", "runtime": "fast"},
        {"type": "task-failed", "uuid": "c", "timestamp": math.inf, "clock": -math.inf},
        {"type": "worker-heartbeat", "hostname": "w", "freq": math.inf, "timestamp": math.nan},
    ]
    for event in odd:
        state.apply(event, 100.0)
    assert state.tasks["a"].state == "SUCCESS" and state.tasks["b"].state == "SUCCESS"
    with TaskStore(tmp_path / "state.sqlite") as store:
        render_everything(state, 101.0, store)


# --------------------------------------------------------------------------- on the broker

BAD_BODIES: list[tuple[str | None, bytes]] = [
    ("application/json", b"{not json"),
    ("application/json", b"42"),
    ("application/json", b'"a string"'),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'{"no": "type"}'),
    ("application/json", b'[{"type": "task-sent"}, "not an event"]'),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b'{"type": 7}'),
    ("application/x-python-serialize", b"\x80\x04K\x01."),
    ("text/plain", b"hello"),
    (None, b""),
    ("application/json", b"[" * 5000 + b"]" * 5000),
]
BAD_FIELDS: list[dict[str, Any]] = [
    {"type": "task-started", "hostname": "w"},  # no uuid
    {"type": "task-succeeded", "uuid": 5},
    {"type": "worker-heartbeat"},  # no hostname
    {"type": "worker-online", "hostname": ""},
]
STORM = 1200


def test_a_storm_of_malformed_events_is_counted_and_the_monitor_goes_on(
    broker_url: str,
) -> None:
    host = f"{unique('fake')}@storm"
    sent_bad_bodies = sent_bad_fields = 0
    good_ids: list[str] = []
    with LiveMonitor(broker_url, ask_heartbeat=False) as monitor:
        base_malformed = monitor.read(lambda s: s.malformed)
        settings_ = BrokerSettings.from_url(broker_url, environ={})
        with Connection(settings_, name="relia-event-storm") as conn:
            ch = conn.channel()
            for n in range(STORM):
                if n % 3 == 0:
                    uuid = unique("good")
                    good_ids.append(uuid)
                    event = make_event(
                        "task-received", uuid=uuid, hostname=host, clock=n, name="t.ok"
                    )
                    ch.publish(encode_event(event))
                elif n % 3 == 1:
                    ctype, body = BAD_BODIES[n % len(BAD_BODIES)]
                    props = Properties(content_type=ctype, content_encoding="utf-8")
                    ch.publish(Envelope(body, props, exchange="celeryev", routing_key="task.x"))
                    sent_bad_bodies += 1
                else:
                    bad = dict(BAD_FIELDS[n % len(BAD_FIELDS)])
                    bad.setdefault("timestamp", time.time())
                    body = json.dumps(bad).encode()
                    props = Properties(content_type="application/json", content_encoding="utf-8")
                    ch.publish(Envelope(body, props, exchange="celeryev", routing_key="task.y"))
                    sent_bad_fields += 1
            ch.queue_declare(unique("sync"), auto_delete=True)  # a round trip: all sent
        expected = sent_bad_bodies + sent_bad_fields
        wait_until(
            lambda: (
                monitor.read(lambda s: s.malformed - base_malformed) >= expected
                and all(monitor.task_state(u) == "RECEIVED" for u in good_ids)
            ),
            20,
            message=f"{expected} malformed counted and the good events folded",
        )
        assert monitor.read(lambda s: s.malformed - base_malformed) == expected
        assert monitor.feed.status.connected and monitor.feed.connects == 1
    record_figures(
        "monitor_malformed_events",
        {"malformed_sent": expected, "good_events": len(good_ids), "feed_reconnects": 0},
    )


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_in_an_event_do_not_stop_the_fold(value: float) -> None:
    state = MonitorState()
    state.apply({"type": "task-received", "uuid": "x", "clock": value, "timestamp": value}, 1.0)
    assert state.tasks["x"].state == "RECEIVED"
