"""The client's pure parts: calling options become the right v2 message; CLI argument parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amqptool.client import RetryPolicy, build_message, signature
from amqptool.client.cli import parse_arg, parse_kwargs
from amqptool.client.result import ResultMeta
from amqptool.codec.tasks import encode_task
from amqptool.errors import UsageError
from tests.harness import modules_loaded_by, top_level

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


def test_countdown_becomes_an_absolute_eta_and_numeric_expires_an_absolute_time() -> None:
    msg = build_message("t.add", (1, 2), countdown=3, expires=120, now=NOW)
    assert msg.eta == NOW + timedelta(seconds=3)
    assert msg.expires == NOW + timedelta(seconds=120)
    env = encode_task(msg)
    assert env.headers["eta"] == "2026-11-21T10:00:03+00:00"
    assert env.headers["expires"] == "2026-11-21T10:02:00+00:00"


def test_eta_accepts_datetimes_and_iso_strings_naive_meaning_utc() -> None:
    naive = datetime(2026, 11, 21, 10, 0, 5)
    assert build_message("t", eta=naive, now=NOW).eta == naive.replace(tzinfo=UTC)
    assert build_message("t", eta="2026-11-21T10:00:05Z", now=NOW).eta == NOW + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"countdown": 1, "eta": NOW}, "countdown or eta"),
        ({"eta": "tomorrow"}, "ISO 8601"),
        ({"priority": 256}, "priority"),
        ({"priority": -1}, "priority"),
        ({"time_limit": -5}, "time_limit"),
        ({"link": "peer.add"}, "link"),
        ({"link_error": [{"args": []}]}, "link_error"),
    ],
)
def test_bad_calling_options_are_usage_errors(options: dict[str, object], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        build_message("t", **options)  # type: ignore[arg-type]  # deliberately wrong values


def test_args_must_be_a_sequence_and_kwargs_a_mapping() -> None:
    with pytest.raises(UsageError, match="args must be a list"):
        build_message("t", "12")
    with pytest.raises(UsageError, match="kwargs must be a mapping"):
        build_message("t", (), [("a", 1)])  # type: ignore[arg-type]  # deliberately wrong


def test_link_signatures_go_into_the_embed_as_celery_writes_them() -> None:
    cb = signature("t.add", (10,))
    eb = signature("t.fail", ("errback",), immutable=True)
    msg = build_message("t.add", (4, 5), link=cb, link_error=[eb])
    body = encode_task(msg).body
    assert b'"callbacks": [{"task": "t.add", "args": [10], "kwargs": {}, "options": {}' in body
    assert msg.errbacks == [
        {
            "task": "t.fail",
            "args": ["errback"],
            "kwargs": {},
            "options": {},
            "subtask_type": None,
            "immutable": True,
        }
    ]


def test_headers_shadow_priority_and_time_limits_land_in_the_message() -> None:
    msg = build_message(
        "t.add",
        (4, 5),
        headers={"x_custom": "hi"},
        shadow="add-alias",
        priority=5,
        time_limit=30,
        soft_time_limit=20,
        parent_id="p",
        root_id="r",
    )
    env = encode_task(msg)
    assert env.headers["x_custom"] == "hi" and env.headers["shadow"] == "add-alias"
    assert env.headers["timelimit"] == [30, 20]
    assert (env.headers["parent_id"], env.headers["root_id"]) == ("p", "r")
    assert env.properties.priority == 5
    assert env.properties.correlation_id == msg.id == env.headers["id"]


def test_default_retry_policy_is_kombus_three_tries_0_02_02() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert [policy.interval(n) for n in (1, 2, 3)] == [0.0, 0.2, 0.2]
    custom = RetryPolicy.from_mapping({"max_retries": 1, "interval_start": 0.5})
    assert custom.max_retries == 1 and custom.interval(1) == 0.2  # capped by interval_max
    with pytest.raises(UsageError, match="unknown retry_policy"):
        RetryPolicy.from_mapping({"retries": 2})


def test_failure_states_rebuild_the_exception_type_with_the_remote_traceback() -> None:
    meta = ResultMeta.from_body(
        {
            "task_id": "x",
            "status": "FAILURE",
            "result": {"exc_type": "KeyError", "exc_message": ["nope"], "exc_module": "builtins"},
            "traceback": "Traceback ...\nKeyError: 'nope'\n",
        }
    )
    exc = meta.exception()
    assert isinstance(exc, KeyError) and exc.args == ("nope",)
    assert "remote traceback" in exc.__notes__[0]
    revoked = ResultMeta.from_body({"task_id": "y", "status": "REVOKED", "result": None})
    assert type(revoked.exception()).__name__ == "TaskRevokedError"


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", 2), ("2.5", 2.5), ('"2"', "2"), ("[1, 2]", [1, 2]), ("null", None), ("hi", "hi")],
)
def test_cli_arguments_are_json_where_they_parse_else_strings(text: str, value: object) -> None:
    assert parse_arg(text) == value


def test_cli_kwargs_must_be_a_json_object() -> None:
    assert parse_kwargs('{"x": 1}') == {"x": 1}
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_kwargs("{")
    with pytest.raises(UsageError, match="JSON object"):
        parse_kwargs("[1]")


def test_importing_the_client_and_its_command_does_not_import_pika() -> None:
    loaded = top_level(modules_loaded_by("import amqptool.client, amqptool.client.cli"))
    assert not {"pika", "celery", "textual", "prompt_toolkit"} & loaded


def test_the_public_surface_is_pinned() -> None:
    import amqptool.client

    assert sorted(amqptool.client.__all__) == [
        "AsyncResult",
        "Client",
        "GroupResult",
        "ResultMeta",
        "RetryPolicy",
        "Signature",
        "build_message",
        "chain",
        "chord",
        "chunks",
        "default_client",
        "group",
        "signature",
        "xmap",
        "xstarmap",
    ]
    client = amqptool.client.Client(url="amqp://guest:secret@127.0.0.1:5672//")
    assert "secret" not in repr(client)
    assert amqptool.client.default_client() is amqptool.client.default_client()
