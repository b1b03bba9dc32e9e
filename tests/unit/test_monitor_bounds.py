"""The monitor's state with hostile and huge events: control characters made visible, fields
cut with a marker, memory bounded in bytes, names from any event, totals that never forget."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from amqptool.monitor.core.clean import clean, visible
from amqptool.monitor.core.selectors import header_view, task_detail, task_row, worker_rows
from amqptool.monitor.core.state import MonitorState
from tests.unit.test_monitor_state import T0, ev, heartbeat

ESC = "\x1b"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil\x1b\\link\x9b31m\u202eevil"


def test_visible_escapes_every_control_character_and_keeps_traceback_lines() -> None:
    shown = visible(HOSTILE)
    assert ESC not in shown and "\x07" not in shown and "\x9b" not in shown
    assert "\u202e" not in shown
    assert shown.startswith("\\x1b]0;pwned\\x07")
    assert visible("a\nb") == "a\\nb"
    assert visible("Traceback:\n  line\x1b[31m", multiline=True) == "Traceback:\n  line\\x1b[31m"
    assert visible("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


def test_clean_cuts_long_text_with_a_visible_marker() -> None:
    text = clean("x" * 10_000, 100)
    assert text == "x" * 100 + "…[cut 9900 chars]"


def test_every_string_from_hostile_events_is_stored_without_control_characters() -> None:
    state = MonitorState()
    host = f"w{HOSTILE}@h"
    state.apply(heartbeat(host=host, sw_ident=HOSTILE, sw_ver=HOSTILE, sw_sys=HOSTILE), T0)
    fields: dict[str, Any] = {"name": HOSTILE, "args": HOSTILE, "kwargs": HOSTILE, "eta": HOSTILE}
    state.apply(ev("task-received", host=host, uuid=f"u{HOSTILE}", **fields), T0)
    state.apply(
        ev(
            "task-failed",
            host=host,
            uuid=f"u{HOSTILE}",
            exception=HOSTILE,
            traceback=f"Traceback\n{HOSTILE}",
        ),
        T0,
    )
    state.apply(ev(f"task-{HOSTILE}", host=host, uuid="u2", note=HOSTILE), T0)
    rendered: list[str] = []
    for task in state.tasks.values():
        rendered += task_row(task).cells
        detail = task_detail(task, T0)
        rendered += [v for _, v in detail.fields] + [v for _, v in detail.extra]
        rendered += [e.event + e.host for e in detail.timeline] + [detail.traceback or ""]
    for row in worker_rows(state, T0):
        rendered += row.cells
    view = header_view(state, T0, broker="b", connection="c", connected=True)
    rendered += [s for s, _ in view.counts]
    assert rendered and all(ESC not in text and "\x9b" not in text for text in rendered)
    assert any("\\x1b]0;pwned" in text for text in rendered)
    task = next(iter(state.tasks.values()))
    assert task.traceback is not None and task.traceback.startswith("Traceback\n")


def test_a_name_from_any_event_that_carries_it() -> None:
    state = MonitorState()
    state.apply(ev("task-rejected", uuid="r1", name="app.unknown", requeue=False), T0)
    state.apply(ev("task-failed", uuid="f1", name="app.gone", exception="NotRegistered"), T0)
    assert state.tasks["r1"].name == "app.unknown"
    assert state.tasks["f1"].name == "app.gone"
    # a later task-received's name does not lose to the first one, and is kept when it wins
    state.apply(ev("task-received", uuid="r1", name="app.unknown"), T0 - 1)
    assert state.tasks["r1"].name == "app.unknown"


def test_100_events_with_1mb_fields_stay_under_a_memory_bound() -> None:
    big = "a" * 1_000_000
    events = [
        ev("task-received", uuid=f"big-{i}", name="app.big", args=big, kwargs=big)
        for i in range(100)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        state = MonitorState()
        for event in events:
            state.apply(event, T0)
        del events
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(state.tasks) == 100
    assert all(
        t.args is not None and t.args.endswith("…[cut 995904 chars]") for t in state.tasks.values()
    )
    assert held < 3_000_000, held  # 100 x 2 MB came in


def test_the_byte_bound_evicts_old_tasks_and_keeps_the_count() -> None:
    state = MonitorState(max_bytes=200_000, field_limit=4096)
    for i in range(200):
        state.apply(ev("task-received", uuid=f"t{i}", name="a", args="x" * 10_000), T0 + i)
        state.apply(ev("task-succeeded", uuid=f"t{i}", runtime=0.01), T0 + i)
    assert state.bytes <= 200_000
    assert 10 < len(state.tasks) < 200
    assert "t199" in state.tasks and "t0" not in state.tasks
    assert state.evicted == 200 - len(state.tasks)
    assert state.bytes == sum(t.size for t in state.tasks.values())


def test_totals_never_depend_on_the_in_memory_bound() -> None:
    state = MonitorState(max_tasks=10)
    for i in range(300):
        host = f"w{i % 3}@h"
        name = "app.add" if i % 4 else "app.report"
        state.apply(ev("task-received", uuid=f"t{i}", host=host, name=name), T0 + i)
        state.apply(ev("task-started", uuid=f"t{i}", host=host), T0 + i)
        if i % 10 == 9:
            state.apply(
                ev("task-failed", uuid=f"t{i}", host=host, exception="KeyError('x')"), T0 + i
            )
        else:
            took = 0.001 * (i + 1)
            state.apply(ev("task-succeeded", uuid=f"t{i}", host=host, runtime=took), T0 + i)
    totals = state.totals
    assert len(state.tasks) == 10
    assert totals.total("succeeded") == 270 and totals.total("failed") == 30
    assert totals.total("received") == 300 == totals.total("started")
    assert totals.host_total("w0@h", "received") == 100
    rows = {r.name: r for r in totals.type_rows()}
    assert rows["app.add"].counts["received"] == 225 and rows["app.report"].counts["received"] == 75
    runtime = totals.all_runtime
    assert runtime.count == 270
    p50 = runtime.percentile(0.5)
    assert p50 is not None and 0.14 < p50 < 0.16  # exact median 0.1505, 5 % buckets
    view = header_view(state, T0 + 300, broker="b", connection="c", connected=True)
    assert ("SUCCESS", 270) in view.counts and ("FAILURE", 30) in view.counts
    failed = [k for k in totals.counts if k[0] == "failed"]
    assert {k[4] for k in failed} == {"KeyError"}


def test_label_values_are_bounded_against_hostile_cardinality() -> None:
    state = MonitorState()
    state.totals._name.limit = 50  # the default is 1000; a small one keeps the test short
    for i in range(200):
        state.apply(ev("task-received", uuid=f"t{i}", name=f"n{i}"), T0)
    names = {r.name for r in state.totals.type_rows()}
    assert len(names) == 51 and "other" in names
    assert state.totals.total("received") == 200
