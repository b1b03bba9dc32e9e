"""The fold's fast paths give what the slow paths gave: a printable precheck before cleaning,
totals/history/throughput settled once per batch, the inlined field copy and worker heartbeat."""

from __future__ import annotations

import random
from typing import Any

import pytest

from amqptool.monitor.core.clean import _TABLE, _TABLE_MULTILINE, clean_key, unsafe, visible
from amqptool.monitor.core.history import History
from amqptool.monitor.core.model import Throughput
from amqptool.monitor.core.selectors import task_detail, task_row
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.core.totals import Totals
from tests.unit.test_monitor_state import T0, ev, heartbeat, lifecycle


def test_every_character_the_cleaner_escapes_fails_the_printable_precheck() -> None:
    # The fold keeps text that ``str.isprintable()`` accepts without searching it: that is
    # only sound if no escaped character is printable.
    for code in (*_TABLE, *_TABLE_MULTILINE):
        assert not chr(code).isprintable(), hex(code)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("plain ascii", False),
        ("café ünïcode ✓", False),
        ("non\xa0breaking", False),  # not printable for Python, but nothing to escape
        ("a\x1b]0;pwned\x07", True),
        ("tab\there", True),
        ("line\nbreak", True),
        ("c1\x9bcsi", True),
        ("bidi\u202eevil", True),
        ("mark\u200e", True),
    ],
)
def test_unsafe_and_clean_key_agree_with_the_escape_table(text: str, bad: bool) -> None:
    assert unsafe(text) is bad
    assert (clean_key(text) != text) is bad
    assert (visible(text) != text) is bad


def test_fields_shown_are_cleaned_on_the_fast_path_too() -> None:
    state = MonitorState()
    state.apply_many(
        [
            ev(
                "task-received",
                uuid="u\x1b[2J",
                host="w\x07@h",
                name="app.\x1b]8;;x\x07add",
                args="(1,\x9b 2)",
                kwargs="{'a': '\xa0'}",
                root_id="r\u202e",
                retries=0,
            ),
            ev("task-succeeded", uuid="u\x1b[2J", host="w\x07@h", result="ok\x00", runtime=0.5),
        ],
        T0,
    )
    (task,) = state.tasks.values()
    assert task.uuid == "u\\x1b[2J" and task.worker == "w\\x07@h"
    assert task.name == "app.\\x1b]8;;x\\x07add"
    assert task.args == "(1,\\x9b 2)" and task.kwargs == "{'a': '\xa0'}"
    assert task.root_id == "r\\u202e" and task.result == "ok\\x00"
    detail = task_detail(task, T0, tasks=state.tasks)
    shown = " ".join([*task_row(task).cells, *(v for _, v in detail.fields), detail.name])
    assert not any(ch in shown for ch in "\x1b\x07\x9b\x00\u202e")


def test_long_printable_fields_are_still_cut() -> None:
    state = MonitorState(field_limit=10)
    state.apply(ev("task-received", uuid="t", name="n" * 300, args="a" * 50), T0)
    task = state.tasks["t"]
    assert task.args is not None and task.args.startswith("a" * 10) and "cut 40" in task.args
    assert task.name is not None and task.name.startswith("n" * 256) and "cut 44" in task.name


def _events(seed: int, count: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        uuid = f"t{rnd.randrange(count // 2)}"
        host = f"w{rnd.randrange(3)}@h"
        kind = rnd.choice(["received", "started", "succeeded", "failed", "retried", "progress"])
        fields: dict[str, Any] = {"uuid": uuid, "host": host, "ts": T0 + i * 0.01}
        if kind == "received":
            fields.update(name=rnd.choice(["a", "b", "c\x1b"]), args=f"({i},)", retries=0)
        elif kind == "succeeded":
            fields.update(result=str(i), runtime=rnd.choice([0.5, 1.25, None, "x"]))
        elif kind in ("failed", "retried"):
            fields.update(exception=rnd.choice(["KeyError('k')", "ValueError()"]))
        out.append(ev(f"task-{kind}", **fields))
        if i % 7 == 0:
            out.append(heartbeat(host=host))
    return out


def _observable(state: MonitorState, now: float) -> Any:
    return (
        sorted(state.totals.counts.items()),
        sorted(
            (k, v.count, v.total, v.prom, sorted(v.log_buckets.items()))
            for k, v in state.totals.runtimes.items()
        ),
        [
            (b.start, b.succeeded, b.failed, b.runtimes.count, b.runtimes.total)
            for b in state.history.buckets.values()
        ],
        state.throughput.series(now, 600),
        state.counts,
        state.bytes,
        {u: (t.state, t.name, t.result, t.runtime, t.size) for u, t in state.tasks.items()},
        {h: (w.last_heartbeat, w.online_since) for h, w in state.workers.items()},
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_batch_folds_to_the_same_observable_state_as_one_event_at_a_time(seed: int) -> None:
    events = _events(seed, 400)
    one = MonitorState(max_tasks=50)
    one.totals._name.limit = 2  # small label bounds: the batch must bound them in the same order
    for i in range(0, len(events), 37):
        for event in events[i : i + 37]:
            one.apply(dict(event), T0 + i)
    many = MonitorState(max_tasks=50)
    many.totals._name.limit = 2
    for i in range(0, len(events), 37):
        many.apply_many([dict(e) for e in events[i : i + 37]], T0 + i)
    assert _observable(one, T0 + 500) == _observable(many, T0 + 500)
    assert many.totals.total("received") == sum(e["type"] == "task-received" for e in events)


def test_record_many_counts_like_record() -> None:
    keys = [("received", f"n{i % 5}", "h", "q", "") for i in range(20)] + [
        ("failed", "n1", "h", "q", "KeyError")
    ]
    runtimes = [(keys[i], 0.1 * i) for i in range(0, 20, 3)]
    one, many = Totals(max_labels=3), Totals(max_labels=3)
    for key in keys:
        kind, name, host, queue, exc = key
        one.record(kind, name, host, queue, exception=exc)
    for key, runtime in runtimes:
        one.record("succeeded", key[1], key[2], key[3], runtime=runtime)
    pending: dict[Any, int] = {}
    for key in keys:
        pending[key] = pending.get(key, 0) + 1
    many.record_many(pending)
    succeeded: dict[Any, int] = {}
    for key, _ in runtimes:
        skey = ("succeeded", *key[1:])
        succeeded[skey] = succeeded.get(skey, 0) + 1
    many.record_many(succeeded, [(("succeeded", *k[1:]), r) for k, r in runtimes])
    assert one.counts == many.counts
    assert {k: (v.count, v.total, v.prom) for k, v in one.runtimes.items()} == {
        k: (v.count, v.total, v.prom) for k, v in many.runtimes.items()
    }
    assert one.total("received") == many.total("received") == 20


def test_history_and_throughput_batches_count_like_single_calls() -> None:
    h1, h2 = History(), History()
    t1, t2 = Throughput(), Throughput()
    for failed, runtime in [(False, 0.5), (True, None), (False, None), (False, 2.0)]:
        h1.finished(failed, T0, runtime)
        t1.record(failed, T0)
    h2.finished_many(3, 1, T0, [0.5, 2.0])
    t2.record_many(3, 1, T0)
    h2.finished_many(0, 0, T0 + 3600)  # nothing finished: no bucket made
    assert [(b.start, b.succeeded, b.failed, b.runtimes.count) for b in h1.buckets.values()] == [
        (b.start, b.succeeded, b.failed, b.runtimes.count) for b in h2.buckets.values()
    ]
    assert t1.series(T0, 5) == t2.series(T0, 5)


def test_task_events_count_as_heartbeats_and_bring_a_worker_back_online() -> None:
    state = MonitorState()
    state.apply_many(lifecycle("a", t=T0), T0)
    worker = state.workers["w1@host"]
    assert worker.online_since == T0 and worker.last_heartbeat == T0
    state.apply(ev("task-received", uuid="b"), T0 + 1)  # still online: online_since kept
    assert worker.online_since == T0 and worker.last_heartbeat == T0 + 1
    state.apply(ev("task-received", uuid="c"), T0 + 100)  # expired meanwhile: back online now
    assert worker.online_since == T0 + 100 and worker.is_online(T0 + 100)


@pytest.mark.parametrize(
    "value",
    [0, 3, -2, 2**70, 1.5, 0.0, -0.0, -1.0, float("nan"), float("inf"), True, False, "7", None],
)
def test_counts_and_runtimes_copied_on_the_fast_path_are_what_field_value_gives(
    value: Any,
) -> None:
    from amqptool.monitor.core.fields import field_value

    state = MonitorState()
    state.apply_many(
        [
            ev("task-received", uuid="t1", name="app.add", retries=value),
            # no task-started: the fold would work a missing runtime out from the two times
            ev("task-succeeded", uuid="t1", runtime=value, result="1"),
            ev("task-revoked", uuid="t2", signum=value, terminated=True),
        ],
        T0,
    )
    task, revoked = state.tasks["t1"], state.tasks["t2"]
    for got, field in ((task.retries, "retries"), (task.runtime, "runtime")):
        want = field_value(field, value)
        assert got == want or (got != got and want != want), field  # NaN never stays
        assert type(got) is type(want), field
    assert revoked.signum == field_value("signum", value)
    assert type(revoked.signum) is type(field_value("signum", value))
