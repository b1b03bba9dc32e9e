"""The shell's parser and command registry: table-driven, plus generated input."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.errors import UsageError
from amqptool.shell.core.command_table import COMMANDS, did_you_mean
from amqptool.shell.core.helptext import command_help, general_help
from amqptool.shell.core.parser import (
    ParsedCommand,
    UnknownCommandError,
    parse_bool,
    parse_line,
    parse_tokens,
)


def parse(line: str) -> ParsedCommand:
    cmd = parse_line(line)
    assert cmd is not None
    return cmd


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("YES", True),
        ("Off", False),
        ("maybe", None),
        ("", None),
    ],
)
def test_booleans_accept_camqadm_spellings(text: str, value: bool | None) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "queue.declare myq no yes no no",
            {
                "queue": "myq",
                "passive": False,
                "durable": True,
                "exclusive": False,
                "auto_delete": False,
            },
        ),
        ("queue.declare myq durable=on", {"queue": "myq", "passive": False, "durable": True}),
        ("queue.declare ''", {"queue": ""}),
        (
            "exchange.declare testexchange direct",
            {"exchange": "testexchange", "type": "direct", "internal": False},
        ),
        (
            "exchange.declare x x-delayed-message yes",
            {"type": "x-delayed-message", "passive": True},
        ),
        ("exchange.delete testexchange", {"if_unused": False}),
        ("queue.delete q yes no", {"if_unused": True, "if_empty": False}),
        ("queue.bind q e", {"routing_key": ""}),
        ("queue.bind q e testkey", {"routing_key": "testkey"}),
        (
            'basic.publish "This is a message!" testexchange testkey',
            {"msg": "This is a message!", "exchange": "testexchange", "routing_key": "testkey"},
        ),
        ("basic.publish 'a b' '' q yes", {"msg": "a b", "exchange": "", "mandatory": True}),
        ("basic.publish a=b ex rk", {"msg": "a=b"}),
        ("basic.publish -- type=x ex rk", {"msg": "type=x"}),
        ("basic.get testqueue", {"queue": "testqueue", "no_ack": False}),
        ("basic.get testqueue on", {"no_ack": True}),
        ("basic.ack 1", {"delivery_tag": 1, "multiple": False}),
        ("basic.nack 3 no yes", {"delivery_tag": 3, "requeue": False, "multiple": True}),
        ("basic.reject 2", {"requeue": True}),
        ("basic.recover", {"requeue": True}),
        ("basic.qos 10 global=yes", {"prefetch_count": 10, "global": True}),
        ("basic.consume q", {"count": 10, "timeout": 5.0, "mode": "ack"}),
        ("basic.consume q 3 0.5 peek", {"count": 3, "timeout": 0.5, "mode": "peek"}),
        ("help", {"command": ""}),
        ("help queue.declare", {"command": "queue.declare"}),
    ],
)
def test_arguments_are_typed_in_camqadm_order(line: str, expected: dict[str, Any]) -> None:
    values = parse(line).values
    assert {k: values[k] for k in expected} == expected


def test_x_arguments_get_the_types_the_broker_wants() -> None:
    cmd = parse(
        "queue.declare q x-queue-type=quorum x-message-ttl=60000 x-expires=1000 "
        "x-max-length=5 x-max-priority=9 x-dead-letter-exchange=dlx x-single-active-consumer=yes "
        "x-custom=7 x-forced:int=7 arg.plain=1"
    )
    assert cmd.arguments == {
        "x-queue-type": "quorum",
        "x-message-ttl": 60000,
        "x-expires": 1000,
        "x-max-length": 5,
        "x-max-priority": 9,
        "x-dead-letter-exchange": "dlx",
        "x-single-active-consumer": True,
        "x-custom": "7",
        "x-forced": 7,
        "plain": "1",
    }
    assert parse("exchange.declare e direct alternate-exchange=ae").arguments == {
        "alternate-exchange": "ae"
    }
    assert parse("queue.bind q hx '' x-match=any arg.format=pdf").arguments == {
        "x-match": "any",
        "format": "pdf",
    }


def test_publish_properties_and_headers_are_typed() -> None:
    cmd = parse(
        "basic.publish '{\"a\": 1}' ex rk content_type=application/json content_encoding=utf-8 "
        "delivery_mode=persistent priority=5 correlation_id=c1 reply_to=r1 expiration=60000 "
        "message_id=m1 type=t1 timestamp=1700000000 headers.trace=abc headers.n:int=5 "
        "headers.f:float=0.5 headers.b:bool=yes headers.j:json='[1, {\"k\": null}]' "
        "headers.x-delay=100"
    )
    assert cmd.properties == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "priority": 5,
        "correlation_id": "c1",
        "reply_to": "r1",
        "expiration": "60000",
        "message_id": "m1",
        "type": "t1",
        "timestamp": 1700000000,
    }
    assert cmd.headers == {
        "trace": "abc",
        "n": 5,
        "f": 0.5,
        "b": True,
        "j": [1, {"k": None}],
        "x-delay": 100,
    }


def test_one_shot_tokens_are_not_split_again() -> None:
    cmd = parse_tokens(["basic.publish", "two words", "", "q"])
    assert cmd.values["msg"] == "two words" and cmd.values["exchange"] == ""


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "   # indented comment"])
def test_blank_lines_and_comments_are_skipped(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("queue.declare", "queue.declare: expected 1 to 5 arguments, got 0 (queue is missing)"),
        ("queue.purge a b", "queue.purge: expected 1 argument, got 2"),
        ("queue.declare a b", "passive: expected yes/no, on/off, true/false or 1/0, not 'b'"),
        ("basic.ack x", "delivery_tag: expected an integer, not 'x'"),
        ("basic.ack -1", "delivery_tag: -1 is out of range"),
        ("basic.qos 70000", "prefetch_count: 70000 is out of range (0..65535)"),
        ("basic.publish 'unclosed", "cannot split the line: no closing quotation"),
        ("queue.declare q x-message-ttl=abc", "x-message-ttl: expected an integer, not 'abc'"),
        ("queue.declare q x-single-active-consumer=2", "x-single-active-consumer: expected yes/no"),
        ("exchange.declare e bogus", "unknown exchange type 'bogus'"),
        ("queue.declare " + "x" * 256, "queue: longer than 255 bytes"),
        ("basic.publish m e r priority=300", "priority: 300 is out of range (0..255)"),
        ("basic.publish m e r delivery_mode=3", "delivery_mode: expected 1 (transient) or 2"),
        ("basic.publish m e r expiration=soon", "expiration: expected an integer"),
        ("basic.publish m e r headers.=1", "headers.: the name after the dot is empty"),
        ("basic.publish m e r headers.j:json={", "headers.j: not valid JSON"),
        ("basic.consume q 0", "count: 0 is out of range (1..65535)"),
        ("basic.consume q 1 nan", "timeout: nan is out of range"),
        ("basic.consume q 1 1 sometimes", "mode: expected one of ack, peek, manual, no_ack"),
        ("queue.declare q yes passive=yes", "passive given twice (by position and by name)"),
        ("queue.declare q durable=yes durable=no", "durable given twice"),
        ("help a b", "help: expected 0 to 1 arguments, got 2"),
    ],
)
def test_bad_arguments_are_one_usage_error_naming_the_signature(line: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_line(line)
    assert message in err.value.user_line()
    name = line.split()[0]
    if name in COMMANDS:
        assert f"usage: {COMMANDS[name].signature()}" in err.value.user_line()
    assert "\n" not in err.value.user_line()


def test_an_unknown_command_says_camqadm_words_and_suggests() -> None:
    with pytest.raises(UnknownCommandError) as err:
        parse_line("queue.delcare testqueue")
    assert err.value.user_line() == (
        "unknown syntax: 'queue.delcare testqueue'. how about some 'help'? "
        "did you mean 'queue.declare'?"
    )
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("word", "suggestions"),
    [
        ("queue.delcare", ["queue.declare"]),
        ("basic.pubish", ["basic.publish"]),
        ("declare", ["exchange.declare", "queue.declare"]),
        ("ack", ["basic.ack"]),
        ("frobnicate", []),
    ],
)
def test_did_you_mean_matches_names_and_the_part_after_the_dot(
    word: str, suggestions: list[str]
) -> None:
    assert did_you_mean(word) == suggestions


def test_help_lists_every_signature_with_defaults_and_the_camqadm_example() -> None:
    text = general_help()
    assert text.startswith("Commands\n--------\n")
    for spec in COMMANDS.values():
        assert spec.signature() in text
    assert "queue.declare queue passive:no durable:no exclusive:no auto_delete:no" in text
    assert "basic.get queue no_ack:off" in text
    assert "Example:\n    -> queue.delete myqueue yes no" in text


def test_help_for_one_command_explains_arguments_and_options() -> None:
    text = command_help("basic.publish")
    assert text.splitlines()[0].startswith(
        "basic.publish msg exchange routing_key mandatory:no immediate:no"
    )
    assert "headers.NAME=VALUE" in text and "content_type=..." in text
    assert "x-message-ttl=N" in command_help("queue.declare")
    assert "peek" in command_help("basic.consume")
    with pytest.raises(UsageError) as err:
        command_help("queue.prge")
    assert "did you mean 'queue.purge'" in err.value.user_line()


_COMMAND_WORDS = st.sampled_from([*COMMANDS, "quit", "?", "nope", ""])
_TOKENS = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(["yes", "no", "1", "-1", "x-message-ttl=5", "headers.a=1", "'", '"']),
        st.integers().map(str),
    ),
    max_size=7,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_a_usage_error(line: str) -> None:
    with contextlib.suppress(UsageError):
        parse_line(line)


@settings(max_examples=300, deadline=None)
@given(_COMMAND_WORDS, _TOKENS)
def test_any_arguments_to_any_command_parse_or_are_a_usage_error(
    word: str, tokens: list[str]
) -> None:
    try:
        parse_tokens([word, *tokens])
    except UsageError as exc:
        assert "\n" not in exc.user_line()
