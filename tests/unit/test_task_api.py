"""The task API that tests and apps rely on, without a broker: ``apply()`` and eager mode,
call-time argument checking, the class form of periodic tasks, signatures and ``|``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from amqptool.client import Signature
from worker import EagerResult, PeriodicTask, Task, conf, registry, task
from worker.task import periodic


@task(name="unit.api.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="unit.api.fail")
def fail(message: str) -> None:
    raise KeyError(message)


@task(bind=True, name="unit.api.whoami")
def whoami(self: Task, *args: Any) -> dict[str, Any]:
    return {"id": self.request.id, "eager": self.request.is_eager, "x": self.request.x_custom}


@pytest.fixture
def eager() -> Iterator[None]:
    conf.task_always_eager = True
    try:
        yield
    finally:
        conf.task_always_eager = False
        conf.task_eager_propagates = False


def test_apply_runs_here_and_returns_a_ready_eager_result() -> None:
    r = add.apply((2, 3))
    assert isinstance(r, EagerResult)
    assert (r.get(), r.state, r.ready(), r.successful()) == (5, "SUCCESS", True, True)


def test_apply_keeps_a_failure_in_the_result_unless_told_to_throw() -> None:
    r = fail.apply(("nope",))
    assert (r.state, r.failed()) == ("FAILURE", True)
    assert isinstance(r.result, KeyError)
    assert "KeyError" in (r.traceback or "")
    with pytest.raises(KeyError):
        r.get()
    with pytest.raises(KeyError):
        fail.apply(("nope",), throw=True)


def test_apply_gives_the_task_an_eager_request_with_headers() -> None:
    r = whoami.apply(task_id="fixed-id", headers={"x_custom": "hi"})
    assert r.get() == {"id": "fixed-id", "eager": True, "x": "hi"}


def test_always_eager_runs_delay_in_process(eager: None) -> None:
    assert add.delay(20, 22).get() == 42
    assert isinstance(fail.delay("x").result, KeyError)
    conf.task_eager_propagates = True
    with pytest.raises(KeyError):
        fail.delay("x")


def test_a_wrong_call_raises_before_anything_is_sent() -> None:
    with pytest.raises(TypeError, match=r"unit\.api\.add"):
        add.delay(1)  # no broker is touched: the check comes first
    with pytest.raises(TypeError):
        add.apply_async((1, 2), {"z": 3})


def test_typing_false_lets_any_call_through(eager: None) -> None:
    @task(name="unit.api.loose", typing=False)
    def loose(x: int) -> int:
        return x

    try:
        r = loose.delay(1, 2)  # sent as it is; it is the run that fails
        assert r.failed() and isinstance(r.result, TypeError)
    finally:
        registry.unregister("unit.api.loose")


def test_the_class_form_of_a_periodic_task_registers_task_and_entry() -> None:
    class Tidy(PeriodicTask):
        name = "unit.api.tidy"
        run_every = timedelta(seconds=30)

        def run(self) -> str:
            return "tidy"

    try:
        assert registry["unit.api.tidy"].apply().get() == "tidy"
        entry = next(e for e in periodic.registry if e.name == "unit.api.tidy")
        assert (entry.task, entry.schedule.describe()) == ("unit.api.tidy", "<every 30 seconds>")
    finally:
        registry.unregister("unit.api.tidy")
        periodic.registry.remove("unit.api.tidy")


def test_a_periodic_task_class_without_run_every_is_refused() -> None:
    with pytest.raises(TypeError, match="run_every"):

        class Never(PeriodicTask):
            name = "unit.api.never"

            def run(self) -> None:
                return None

    registry.unregister("unit.api.never")


def test_signatures_pipe_into_a_chain_not_a_dict_merge() -> None:
    s = add.s(2, 2) | add.s(4)
    assert isinstance(s, Signature)
    assert s["task"] == "celery.chain" and s["subtask_type"] == "chain"
    assert [t["task"] for t in s["kwargs"]["tasks"]] == ["unit.api.add", "unit.api.add"]
    assert [t["args"] for t in s["kwargs"]["tasks"]] == [[2, 2], [4]]


def test_signature_clone_set_link_and_on_error() -> None:
    base = add.s(1)
    copy = base.clone((5,), queue="q1")
    assert (copy["args"], copy.options["queue"], base["args"]) == ([5, 1], "q1", [1])
    frozen = add.si(1, 1)
    assert frozen.clone((9,))["args"] == [1, 1]
    base.set(priority=3).link(add.s(10))
    base.on_error(fail.s())
    assert base.options["priority"] == 3
    assert [s["task"] for s in base.options["link"]] == ["unit.api.add"]
    assert [s["task"] for s in base.options["link_error"]] == ["unit.api.fail"]
