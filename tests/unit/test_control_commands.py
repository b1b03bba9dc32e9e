"""The control command table, word-to-arguments mapping, rendering and the wait rule (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from amqptool.codec.control import encode_reply
from amqptool.codec.envelope import Envelope, Properties
from amqptool.control.collect import ReplyCollector, broadcast_idle_gap
from amqptool.control.command_table import (
    COMMANDS,
    compile_arguments,
    compile_request,
    lookup,
    suggest,
)
from amqptool.control.render import (
    error_nodes,
    is_error,
    nodes_online,
    pretty,
    render_command_list,
    render_replies,
    to_json,
)
from amqptool.errors import UsageError

# ---------------------------------------------------------------- words -> arguments (§4.5)

CELERY_CLI_MAPPINGS: list[tuple[list[str], str, dict[str, Any]]] = [
    (["revoke", "ID"], "revoke", {"task_id": ["ID"]}),
    (["terminate", "SIGTERM", "ID"], "terminate", {"signal": "SIGTERM", "task_id": ["ID"]}),
    (
        ["rate_limit", "proto_app.add", "10/m"],
        "rate_limit",
        {"task_name": "proto_app.add", "rate_limit": "10/m"},
    ),
    (
        ["time_limit", "proto_app.sleeper", "60", "120"],
        "time_limit",
        {"task_name": "proto_app.sleeper", "soft": 60.0, "hard": 120.0},
    ),
    (["pool_grow", "1"], "pool_grow", {"n": 1}),
    (["pool_grow"], "pool_grow", {}),
    (["autoscale", "4", "1"], "autoscale", {"max": 4, "min": 1}),
    (["add_consumer", "proto-extra"], "add_consumer", {"queue": "proto-extra"}),
    (
        ["add_consumer", "q", "ex", "topic", "rk"],
        "add_consumer",
        {"queue": "q", "exchange": "ex", "exchange_type": "topic", "routing_key": "rk"},
    ),
    (["cancel_consumer", "q"], "cancel_consumer", {"queue": "q"}),
    (
        ["revoke_by_stamped_headers", "mystamp=blue"],
        "revoke_by_stamped_headers",
        {"headers": ["mystamp=blue"]},
    ),
    (["registered"], "registered", {"taskinfoitems": []}),
    (["query_task", "A", "B"], "query_task", {"ids": ["A", "B"]}),
    (["ping"], "ping", {}),
    (["stats"], "stats", {}),
    (["memdump", "5"], "memdump", {"samples": 5}),
    (["conf", "true"], "conf", {"with_defaults": True}),
    (["status"], "ping", {}),
]


@pytest.mark.parametrize(("words", "method", "expected"), CELERY_CLI_MAPPINGS)
def test_words_map_to_the_arguments_celerys_cli_sends(
    words: list[str], method: str, expected: dict[str, Any]
) -> None:
    assert compile_request(lookup(words[0]), words[1:]) == (method, expected)


def test_revoke_flags_add_terminate_and_signal_and_signal_implies_terminate() -> None:
    revoke = lookup("revoke")
    assert compile_arguments(revoke, ["a", "b"], {"terminate": True}) == {
        "task_id": ["a", "b"],
        "terminate": True,
    }
    assert compile_arguments(revoke, ["a"], {"signal": "SIGKILL"}) == {
        "task_id": ["a"],
        "signal": "SIGKILL",
        "terminate": True,
    }


def test_switches_of_inspect_commands_become_booleans() -> None:
    assert compile_arguments(lookup("conf"), [], {"with_defaults": True}) == {"with_defaults": True}
    assert compile_arguments(lookup("active"), [], {"safe": True}) == {"safe": True}
    assert compile_arguments(lookup("active"), [], {"safe": False}) == {}


def test_hello_always_sends_a_revoked_list() -> None:
    assert compile_arguments(lookup("hello"), ["me@host"]) == {
        "from_node": "me@host",
        "revoked": [],
    }


def test_raw_sends_any_method_with_json_or_text_values() -> None:
    method, arguments = compile_request(lookup("raw"), ["custom_cmd", "n=3", "name=x", "l=[1]"])
    assert method == "custom_cmd"
    assert arguments == {"n": 3, "name": "x", "l": [1]}


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["rate_limit", "t.add"], "rate_limit: missing RATE"),
        (["time_limit"], "time_limit: missing TASK SOFT"),
        (["pool_grow", "x"], "N must be an integer, got 'x'"),
        (["time_limit", "t", "soon"], "SOFT must be a number"),
        (["ping", "extra"], "ping: too many arguments: extra"),
        (["revoke"], "revoke: missing ID"),
        (["query_task"], "query_task: missing ID"),
        (["autoscale", "4"], "autoscale: missing MIN"),
        (["raw", "m", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_bad_words_are_usage_errors_naming_the_problem_and_the_usage(
    words: list[str], message: str
) -> None:
    cmd = lookup(words[0])
    with pytest.raises(UsageError) as info:
        compile_request(cmd, words[1:])
    assert message in info.value.message
    assert info.value.exit_code == 2
    assert cmd.name in (info.value.hint or "")


# ---------------------------------------------------------------- names, aliases, signatures


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("dump_schedule", "scheduled"),
        ("dump_reserved", "reserved"),
        ("dump_active", "active"),
        ("dump_tasks", "registered"),
        ("dump_revoked", "revoked"),
        ("dump_conf", "conf"),
    ],
)
def test_legacy_aliases_resolve_to_the_celery_name_on_the_wire(alias: str, name: str) -> None:
    assert compile_request(lookup(alias), [])[0] == name


def test_an_unknown_command_suggests_close_names() -> None:
    with pytest.raises(UsageError) as info:
        lookup("pnig")
    assert info.value.exit_code == 2
    assert "did you mean 'ping'" in (info.value.hint or "")
    assert suggest("dump_shedule")[0] == "dump_schedule"
    assert "rate_limit" in suggest("ratelimit")


@pytest.mark.parametrize(
    ("name", "usage"),
    [
        ("rate_limit", "rate_limit TASK RATE"),
        ("time_limit", "time_limit TASK SOFT [HARD]"),
        ("revoke", "revoke ID [ID ...] [--terminate] [--signal SIG]"),
        ("terminate", "terminate SIG ID [ID ...]"),
        ("add_consumer", "add_consumer QUEUE [EXCHANGE [TYPE [ROUTING_KEY]]]"),
        ("cancel_consumer", "cancel_consumer QUEUE"),
        ("pool_grow", "pool_grow [N]"),
        ("autoscale", "autoscale MAX MIN"),
        ("query_task", "query_task ID [ID ...]"),
        ("registered", "registered [ATTR ...] [--builtins]"),
        ("conf", "conf [WITH_DEFAULTS] [--with-defaults]"),
        ("active", "active [--safe]"),
        ("ping", "ping"),
    ],
)
def test_signatures_are_generated_from_the_table(name: str, usage: str) -> None:
    assert lookup(name).usage == usage


# Celery's CLI sends these without arguments (and so gets an error back); ours fills them in.
RICHER_THAN_CELERYS_CLI = {"hello", "election", "pool_restart"}


def test_every_celery_57_command_is_in_the_table_with_celerys_argument_names() -> None:
    from celery.worker.control import Panel  # test-only dependency, the reference

    for name, meta in Panel.meta.items():
        cmd = lookup(name)
        assert cmd.name == name, name
        celery_args = [arg for arg, _type in (meta.args or [])]
        ours = [a.name for a in cmd.args]
        if name not in RICHER_THAN_CELERYS_CLI:
            assert ours == celery_args, name
            assert cmd.variadic == meta.variadic, name
        if meta.alias:
            assert meta.alias in cmd.aliases, name
        assert cmd.kind == meta.type, name


def test_the_command_list_shows_signatures_grouped_by_kind() -> None:
    text = render_command_list(COMMANDS)
    assert text.index("Inspect commands:") < text.index("Control commands:")
    assert "rate_limit TASK RATE" in text
    assert "revoke ID [ID ...] [--terminate] [--signal SIG]" in text
    assert "(alias: dump_schedule)" in text
    assert "status" in text and "commands" in text


# ---------------------------------------------------------------- rendering


def test_replies_render_like_celerys_cli() -> None:
    replies = {
        "w1@h": {"ok": "pong"},
        "w2@h": {"error": "unknown task"},
        "w3@h": ["a", {"id": 1}],
        "w4@h": [],
        "w5@h": {"clock": 3},
        "w6@h": None,
    }
    assert render_replies(replies).splitlines() == [
        "->  w1@h: OK",
        "        pong",
        "->  w2@h: ERROR",
        "        unknown task",
        "->  w3@h: OK",
        "    * a",
        '    * {"id": 1}',
        "->  w4@h: OK",
        "    - empty -",
        "->  w5@h: OK",
        "    {",
        '        "clock": 3',
        "    }",
        "->  w6@h: OK",
    ]
    assert render_replies(replies, show_body=False).splitlines()[:2] == [
        "->  w1@h: OK",
        "->  w2@h: ERROR",
    ]


def test_error_replies_are_the_dicts_with_an_error_key() -> None:
    assert is_error({"error": "x"}) and not is_error({"ok": "x"}) and not is_error(["error"])
    assert error_nodes({"a": {"ok": 1}, "b": {"error": "no"}}) == ["b"]
    assert pretty({"ok": "multi\nline"}) == ("OK", "    multi\n    line")


def test_node_count_line_and_plain_json() -> None:
    assert nodes_online(1) == "1 node online."
    assert nodes_online(3) == "3 nodes online."
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert json.loads(to_json({"n": {"eta": when, "b": b"x"}})) == {
        "n": {"eta": "2026-01-02T03:04:05+00:00", "b": "x"}
    }


# ---------------------------------------------------------------- the wait rule (fake clock)


def reply(node: str, value: Any, ticket: str | None = "T", **headers: Any) -> Envelope:
    env = encode_reply(
        node, value, ticket=ticket or "", clock=7, reply_to={"exchange": "x", "routing_key": "r"}
    )
    if ticket is None:
        env.properties.headers.pop("ticket")
    env.properties.headers.update(headers)
    return env


def test_the_first_reply_is_awaited_for_the_whole_timeout() -> None:
    c = ReplyCollector("T", timeout=5.0, started=100.0)
    assert c.next_wait(100.0) == 5.0
    assert c.next_wait(104.0) == 1.0
    assert c.next_wait(105.0) is None and c.replies == {}


def test_the_call_ends_the_moment_limit_replies_are_in() -> None:
    c = ReplyCollector("T", timeout=5.0, started=0.0, limit=2)
    assert c.offer(reply("a@h", {"ok": "pong"}), 0.01)
    assert c.next_wait(0.01) == pytest.approx(5.0)  # a named node gets a full timeout
    assert c.offer(reply("b@h", {"ok": "pong"}), 0.02)
    assert c.next_wait(0.02) is None
    assert c.replies == {"a@h": {"ok": "pong"}, "b@h": {"ok": "pong"}}
    assert c.clocks == [7, 7]


def test_a_broadcast_waits_only_an_idle_gap_after_the_last_reply() -> None:
    assert broadcast_idle_gap(1.0) == 0.25
    assert broadcast_idle_gap(5.0) == 1.25
    assert broadcast_idle_gap(0.1) == 0.1
    c = ReplyCollector("T", timeout=1.0, started=0.0)
    c.offer(reply("a@h", {"ok": "pong"}), 0.1)
    assert c.next_wait(0.1) == pytest.approx(0.25)
    assert c.next_wait(0.36) is None
    celery_like = ReplyCollector("T", timeout=1.0, started=0.0, idle=1.0)
    celery_like.offer(reply("a@h", {"ok": "pong"}), 0.1)
    assert celery_like.next_wait(0.36) == pytest.approx(0.74)


def test_replies_for_other_tickets_expired_or_undecodable_are_dropped() -> None:
    c = ReplyCollector("T", timeout=1.0, started=0.0)
    assert not c.offer(reply("a@h", {"ok": 1}, ticket="OTHER"), 0.1)
    assert not c.offer(reply("a@h", {"ok": 1}, expires=1000), 0.1, wall=2000.0)
    bad = Envelope(b"[1, 2]", Properties(content_type="application/json", headers={}), "x", "r")
    assert not c.offer(bad, 0.1)
    assert c.count == 0 and c.last_reply is None
    assert c.offer(reply("a@h", {"ok": 1}, ticket=None), 0.2)  # no ticket header: a match
    assert c.replies == {"a@h": {"ok": 1}}
