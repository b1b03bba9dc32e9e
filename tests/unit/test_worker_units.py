"""The worker's pure parts: task definitions, execution outcomes, acks, timers, control table."""

from __future__ import annotations

from typing import Any

import pytest

import tests.peers.amqptool_tasks  # noqa: F401  # registers peer.* and extra.*
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import loads
from amqptool.codec.tasks import TaskMessage, decode_task
from amqptool.codec.times import utcnow
from tests.harness import unique
from worker import AlreadyRegistered, Task, control_command, registry, task
from worker.config import WorkerConfig, expand_nodename
from worker.control.registry import NO_REPLY, Panel, dispatch
from worker.pool.callbacks import on_failure_messages, on_success_messages
from worker.pool.execute import IGNORED, REJECTED, Job, execute
from worker.runtime.acks import AckTracker
from worker.runtime.timer import Timer


class RecordingSink:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, env: Envelope) -> None:
        self.published.append(env)

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        self.events.append((event_type, fields))


def body(env: Envelope) -> Any:
    return loads(env.body, env.properties.content_type)


def run(name: str, *args: Any, reply_to: str | None = "replies", **kwargs: Any) -> Any:
    msg = TaskMessage(task=name, args=list(args), kwargs=kwargs, reply_to=reply_to)
    sink = RecordingSink()
    job = Job(1, msg, "q1", {"exchange": "", "routing_key": "q1"}, "node@host")
    return execute(job, registry, sink), sink, msg


# --------------------------------------------------------------------------- defining tasks


def test_the_public_surface_is_pinned() -> None:
    import worker

    assert sorted(worker.__all__) == [
        "AlreadyRegistered",
        "Context",
        "EagerResult",
        "EncodeError",
        "ExceptionInfo",
        "Ignore",
        "MaxRetriesExceededError",
        "NotRegistered",
        "PeriodicTask",
        "Reject",
        "Retry",
        "SoftTimeLimitExceeded",
        "Task",
        "TaskRegistry",
        "TaskRevokedError",
        "TimeLimitExceeded",
        "Worker",
        "WorkerLostError",
        "conf",
        "control_command",
        "crontab",
        "get_task_logger",
        "periodic_task",
        "registry",
        "schedule",
        "task",
    ]


def test_a_decorated_function_is_named_module_dot_function_and_stays_callable() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    assert double.name == f"{__name__}.double"
    assert registry[double.name] is double
    assert double(21) == 42


def test_task_options_are_attributes_and_unknown_options_are_refused() -> None:
    name = unique("opts")

    @task(name=name, acks_late=True, max_retries=7, ignore_result=True, rate_limit="5/s")
    def f() -> None: ...

    assert (f.acks_late, f.max_retries, f.ignore_result, f.rate_limit) == (True, 7, True, "5/s")
    with pytest.raises(TypeError, match="unknown task option"):
        task(name=unique("x"), acks_later=True)


def test_two_tasks_under_one_name_is_a_clear_error_at_definition_time() -> None:
    name = unique("dup")

    @task(name=name)
    def first() -> None: ...

    with pytest.raises(AlreadyRegistered, match=f"{name}.*already registered by .*first"):

        @task(name=name)
        def second() -> None: ...


def test_a_class_based_task_registers_itself_under_module_dot_class() -> None:
    class Shout(Task):
        def run(self, text: str) -> str:
            return text.upper()

    assert registry[f"{__name__}.Shout"].run("hi") == "HI"

    class Abstract(Task):
        abstract = True

        def run(self) -> None: ...

    assert f"{__name__}.Abstract" not in registry


def test_signatures_come_from_the_client_in_celerys_wire_shape() -> None:
    from tests.peers.amqptool_tasks import add

    assert add.s(1) == {
        "task": "peer.add",
        "args": [1],
        "kwargs": {},
        "options": {},
        "subtask_type": None,
        "immutable": False,
    }
    assert add.si(1, 2)["immutable"] is True


def test_argument_check_accepts_fitting_calls_and_explains_the_others() -> None:
    @task(name=unique("args"))
    def f(a: int, b: int = 2, *, c: int = 3) -> int:
        return a + b + c

    assert f.check_arguments([1], {}) is None
    assert f.check_arguments([1, 2], {"c": 4}) is None
    assert "argument" in str(f.check_arguments([], {}))
    assert "argument" in str(f.check_arguments([1, 2, 3], {}))
    assert "unexpected keyword" in str(f.check_arguments([1], {"d": 1}))


# --------------------------------------------------------------------------- executing


def test_success_builds_the_rpc_result_and_the_succeeded_event() -> None:
    out, _sink, msg = run("peer.add", 2, 3)
    assert out.state == "SUCCESS"
    assert out.result is not None
    assert out.result.routing_key == "replies"
    assert out.result.properties.correlation_id == msg.id
    assert out.result.properties.delivery_mode == 1
    got = body(out.result)
    assert (got["status"], got["result"], got["task_id"]) == ("SUCCESS", 5, msg.id)
    assert got["date_done"] and got["children"] == []
    assert out.events[0][0] == "task-succeeded" and out.events[0][1]["result"] == "5"


def test_failure_keeps_the_exception_type_and_traceback() -> None:
    out, _sink, _msg = run("peer.fail", "nope")
    got = body(out.result)  # type: ignore[arg-type]  # a result is expected
    assert got["status"] == "FAILURE"
    assert got["result"] == {
        "exc_type": "ValueError",
        "exc_message": ["nope"],
        "exc_module": "builtins",
    }
    assert "ValueError: nope" in got["traceback"]
    assert (
        out.events[0][0] == "task-failed" and out.events[0][1]["exception"] == "ValueError('nope')"
    )


def test_an_exception_that_cannot_be_serialized_still_gives_type_and_message() -> None:
    out, _sink, _msg = run("extra.unserializable")
    result = body(out.result)["result"]  # type: ignore[arg-type]  # a result is expected
    assert result["exc_type"] == "Unpicklable"
    assert result["exc_message"][0].startswith("<object object at")


def test_a_task_unregistered_after_receipt_fails_cleanly() -> None:
    out, _sink, _msg = run("gone." + unique("t"))
    assert out.state == "FAILURE"
    assert body(out.result)["result"]["exc_type"] == "NotRegistered"  # type: ignore[arg-type]  # set


def test_ignore_result_sends_nothing() -> None:
    out, _sink, _msg = run("peer.noop")
    assert out.state == "SUCCESS" and out.result is None


def test_retry_republishes_same_id_with_retries_plus_one_and_an_eta() -> None:
    out, sink, msg = run("peer.flaky", 5)
    assert out.state == "RETRY"
    (retry_env,) = sink.published
    again = decode_task(retry_env)
    assert (again.id, again.retries, again.parent_id) == (msg.id, 1, msg.id)
    assert again.reply_to == "replies" and retry_env.routing_key == "q1"
    assert again.eta is not None and again.eta > utcnow()
    got = body(out.result)  # type: ignore[arg-type]  # a result is expected
    assert got["status"] == "RETRY" and got["result"]["exc_type"] == "RuntimeError"
    assert got["children"] == [[[msg.id, None], None]]


def test_bound_tasks_see_their_request() -> None:
    out, _sink, msg = run("extra.whoami")
    info = body(out.result)["result"]  # type: ignore[arg-type]  # a result is expected
    assert info["id"] == msg.id and info["hostname"] == "node@host"
    assert info["reply_to"] == "replies" and info["delivery_info"]["routing_key"] == "q1"


def test_update_state_goes_through_the_sink_as_a_custom_state() -> None:
    out, sink, _msg = run("extra.progress", 2)
    states = [body(e)["status"] for e in sink.published]
    assert states == ["PROGRESS", "PROGRESS"]
    assert body(sink.published[1])["result"] == {"done": 2, "total": 2}
    assert out.state == "SUCCESS"


def test_class_based_handlers_run_in_celery_order() -> None:
    from tests.peers.amqptool_tasks import Multiply

    Multiply.calls.clear()
    out, _sink, _msg = run("extra.Multiply", 6, 7)
    assert body(out.result)["result"] == 42  # type: ignore[arg-type]  # a result is expected
    assert Multiply.calls == ["success:42", "after:SUCCESS"]


def test_reject_and_ignore_are_outcomes_not_failures() -> None:
    from worker import Ignore, Reject

    @task(name=unique("rej"))
    def rejecting() -> None:
        raise Reject("no thanks", requeue=True)

    @task(name=unique("ign"))
    def ignoring() -> None:
        raise Ignore()

    out, _s, _m = run(rejecting.name)  # type: ignore[arg-type]  # name is set
    assert (out.state, out.requeue, out.result) == (REJECTED, True, None)
    assert [e[0] for e in out.events] == ["task-failed", "task-rejected"]
    out, _s, _m = run(ignoring.name)  # type: ignore[arg-type]  # name is set
    assert (out.state, out.result, out.events) == (IGNORED, None, [])


def test_callbacks_get_the_result_and_errbacks_the_failed_id() -> None:
    sig = {"task": "peer.add", "args": [10], "kwargs": {}, "options": {}, "immutable": False}
    imm = {"task": "peer.echo", "args": ["x"], "kwargs": {}, "options": {}, "immutable": True}
    parent = TaskMessage(task="peer.add", args=[1, 1], callbacks=[sig, imm], errbacks=[sig])
    link, fixed = (decode_task(e) for e in on_success_messages(parent, 2, "q1"))
    assert link.args == [2, 10] and fixed.args == ["x"]
    assert link.parent_id == parent.id and link.root_id == parent.id
    (err,) = (decode_task(e) for e in on_failure_messages(parent, "q1"))
    assert err.args == [parent.id, 10]


def test_a_chain_sends_the_last_step_carrying_the_rest() -> None:
    steps = [
        {"task": "peer.add", "args": [3], "options": {"task_id": "c", "reply_to": "r"}},
        {"task": "peer.add", "args": [2], "options": {"task_id": "b", "reply_to": "r"}},
    ]
    (env,) = on_success_messages(TaskMessage(task="peer.add", chain=steps), 2, "q1")
    nxt = decode_task(env)
    assert (nxt.id, nxt.args, nxt.reply_to) == ("b", [2, 2], "r")
    assert nxt.chain == [steps[0]] and env.routing_key == "q1"


# --------------------------------------------------------------------------- plumbing


def test_acks_are_batched_with_multiple_only_over_settled_deliveries() -> None:
    acks = AckTracker()
    for tag in range(1, 7):
        acks.delivered(tag)
    acks.ack(1)
    acks.ack(2)
    acks.forget(3)  # rejected: its frame went out already
    acks.ack(4)
    acks.ack(6)  # 5 is still held (ETA): 6 must be acked alone
    assert acks.flush() == [(4, True), (6, False)]
    assert acks.flush() == []
    acks.ack(5)
    assert acks.flush() == [(5, False)]
    assert acks.pending() == 0


def test_timer_runs_due_callbacks_in_order_and_skips_cancelled() -> None:
    timer = Timer()
    ran: list[str] = []
    timer.call_at(2.0, lambda: ran.append("b"))
    timer.call_at(1.0, lambda: ran.append("a"))
    timer.call_at(1.5, lambda: ran.append("x")).cancel()
    assert timer.next_delay(0.5) == 0.5
    assert timer.run_due(2.0) == 2 and ran == ["a", "b"]
    assert timer.next_delay(2.0) is None


@pytest.mark.parametrize(
    ("given", "host", "expected"),
    [
        (None, "box.example.com", "celery@box.example.com"),
        ("w1", "box.example.com", "w1@box.example.com"),
        ("w1@%h", "box.example.com", "w1@box.example.com"),
        ("w1@%n", "box.example.com", "w1@box"),
        ("%n-%d@x", "box.example.com", "box-example.com@x"),
        ("a%%b@h", "box", "a%b@h"),
    ],
)
def test_node_names_expand_like_celery(given: str | None, host: str, expected: str) -> None:
    assert expand_nodename(given, host) == expected


def test_config_refuses_bad_options_with_the_option_named() -> None:
    from amqptool.errors import UsageError
    from amqptool.settings import BrokerSettings

    settings = BrokerSettings.from_url("amqp://guest:guest@localhost//", environ={})
    cfg = WorkerConfig.build(settings, queues="a, b,a", pool="solo", concurrency=8)
    assert cfg.queues == ("a", "b") and cfg.concurrency == 1
    assert "application/x-python-serialize" not in cfg.accept
    with pytest.raises(UsageError, match="pool"):
        WorkerConfig.build(settings, pool="gevent")
    with pytest.raises(UsageError, match="prefetch"):
        WorkerConfig.build(settings, prefetch_multiplier=-1)


# --------------------------------------------------------------------------- control table


class FakeTarget:
    nodename = "me@host"

    def __init__(self) -> None:
        from amqptool.codec.events import LamportClock
        from worker.policy.worker_state import WorkerState

        self.clock = LamportClock(5)
        self.state = WorkerState()
        self.tasks = registry
        self.shutdown_reason: str | None = None

    def request_shutdown(self, reason: str) -> None:
        self.shutdown_reason = reason

    def rate_limit_changed(self, task_name: str) -> None: ...

    def revoked_changed(self) -> None: ...


def call(method: str, **arguments: Any) -> Any:
    target = FakeTarget()
    return dispatch(Panel(target), method, arguments), target  # type: ignore[arg-type]  # fake


def test_control_errors_are_replies_not_crashes() -> None:
    assert call("no_such_command")[0] == {"error": "KeyError('no_such_command')"}
    reply, _ = call("rate_limit")  # missing arguments
    assert reply["error"].startswith("TypeError(")
    assert call("ping", unexpected="ignored")[0] == {"ok": "pong"}


def test_builtin_control_replies_have_celerys_shapes() -> None:
    assert call("clock")[0] == {"clock": 5}
    assert call("rate_limit", task_name="peer.add", rate_limit="10/m")[0] == {
        "ok": "new rate limit set successfully"
    }
    assert call("rate_limit", task_name="nope.nope", rate_limit="1/s")[0] == {
        "error": "unknown task"
    }
    assert call("rate_limit", task_name="peer.add", rate_limit="bogus")[0]["error"].startswith(
        "Invalid rate limit string: ValueError("
    )
    reply, target = call("revoke", task_id=["a1"])
    assert reply == {"ok": "tasks {'a1'} flagged as revoked"} and "a1" in target.state.revoked
    assert call("hello", from_node="me@host")[0] is None
    hello, _ = call("hello", from_node="other@host", revoked=["z9"])
    assert hello["revoked"] == ["z9"] and hello["clock"] == 6
    assert "peer.add" in call("registered", taskinfoitems=[])[0]
    assert call("dump_tasks")[0] == call("registered")[0]


def test_shutdown_asks_for_a_warm_shutdown_and_sends_no_reply() -> None:
    reply, target = call("shutdown")
    assert reply is NO_REPLY and target.shutdown_reason


def test_users_register_commands_from_their_task_module() -> None:
    name = unique("cmd")

    @control_command(name, kind="inspect", aliases=(name + "_alias",), signature="<n>")
    def double_it(panel: Panel, n: int = 1) -> Any:
        """Double n."""
        return {"ok": 2 * n}

    assert call(name, n=4, extra=1)[0] == {"ok": 8}
    assert call(name + "_alias")[0] == {"ok": 2}
    reply = call(name, n="x")[0]
    assert reply == {"ok": "xx"}
