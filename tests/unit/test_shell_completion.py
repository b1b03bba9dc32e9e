"""Completion: the pure analysis, the candidates, the signature hint and the Completer."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from amqptool.shell.completer import ShellCompleter, toolbar_text
from amqptool.shell.core.completion import Kind, analyze, candidates, signature_hint
from amqptool.shell.core.names import KnownNames


@pytest.fixture
def names() -> KnownNames:
    book = KnownNames()
    book.add_exchange("testexchange")
    book.add_queue("testqueue")
    book.add_queue("tasks")
    return book


@pytest.mark.parametrize(
    ("text", "kind", "prefix", "arg"),
    [
        ("", Kind.COMMAND, "", None),
        ("que", Kind.COMMAND, "que", None),
        ("queue.declare ", Kind.ARG, "", "queue"),
        ("queue.declare testq", Kind.ARG, "testq", "queue"),
        ("queue.declare q ", Kind.ARG, "", "passive"),
        ("queue.declare q durable=yes ", Kind.ARG, "", "passive"),
        ("queue.declare q durable=", Kind.OPTION_VALUE, "", None),
        ("queue.declare q x-queue-type=qu", Kind.OPTION_VALUE, "qu", None),
        ("exchange.declare e ", Kind.ARG, "", "type"),
        ('basic.publish "This is a ', Kind.ARG, "This is a ", "msg"),
        ('basic.publish "This is a message!" ', Kind.ARG, "", "exchange"),
        ("basic.publish m e k yes no ", Kind.ARG, "", None),
        ("queue.purge q ", Kind.NOTHING, "", None),
        ("nosuch ", Kind.NOTHING, "", None),
        ("help ", Kind.ARG, "", "command"),
    ],
)
def test_analysis_says_what_is_expected_at_the_cursor(
    text: str, kind: Kind, prefix: str, arg: str | None
) -> None:
    exp = analyze(text)
    assert exp.kind is kind
    assert exp.prefix == prefix
    assert (exp.arg.name if exp.arg else None) == arg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "que",
            [
                "queue.declare",
                "queue.delete",
                "queue.bind",
                "queue.unbind",
                "queue.purge",
                "queue.list",
                "queue.export",
                "queue.import",
                "queue.move",
            ],
        ),
        ("queue.de", ["queue.declare", "queue.delete"]),
        ("dec", ["exchange.declare", "queue.declare"]),  # matches after the dot too
        ("pub", ["basic.publish"]),
        (
            "ex",
            [
                "exchange.declare",
                "exchange.delete",
                "exchange.bind",
                "exchange.unbind",
                "exchange.list",
                "queue.export",
                "exchange.tap",
                "exit",
            ],
        ),
        ("zz", []),
    ],
)
def test_command_names_complete_from_the_start_or_after_the_dot(
    text: str, expected: list[str], names: KnownNames
) -> None:
    assert [c.text for c in candidates(analyze(text), names)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("queue.declare ", ["tasks", "testqueue"]),
        ("queue.declare te", ["testqueue"]),
        ("queue.declare q ", ["yes", "no"]),
        ("queue.declare q o", ["on", "off"]),
        ("queue.declare q t", ["true"]),
        ("queue.declare q d", ["durable="]),
        ("queue.declare q durable=", ["yes", "no", "on", "off", "true", "false", "1", "0"]),
        ("queue.declare q x-queue-type=", ["classic", "quorum", "stream"]),
        (
            "queue.declare q x-dead",
            ["x-dead-letter-exchange=", "x-dead-letter-routing-key=", "x-dead-letter-strategy="],
        ),
        ("queue.declare q x-dead-letter-exchange=test", ["testexchange"]),
        ("exchange.declare e ", ["direct", "topic", "fanout", "headers"]),
        ("exchange.declare e t", ["topic", "type="]),  # a value, or the argument by name
        (
            "queue.bind testqueue ",
            ["amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic", "testexchange"],
        ),
        ("queue.bind testqueue test", ["testexchange"]),
        ("basic.publish 'hi' test", ["testexchange"]),
        ("basic.publish 'hi' testexchange ta", ["tasks"]),
        ("basic.publish m e k content_t", ["content_type="]),
        ("basic.publish m e k content_type=app", ["application/json", "application/octet-stream"]),
        ("basic.publish m e k yes no head", ["headers."]),
        ("basic.publish m e k delivery_mode=", ["1", "2"]),
        ("basic.consume q 1 1 ", ["ack", "peek", "manual", "no_ack"]),
        ("queue.bind q e k x-m", ["x-match="]),
        ("queue.bind q e k x-match=a", ["all", "any", "all-with-x", "any-with-x"]),
        ("help queue.p", ["queue.purge"]),
        ("queue.purge q ", []),
    ],
)
def test_argument_values_and_names_complete_from_what_the_shell_knows(
    text: str, expected: list[str], names: KnownNames
) -> None:
    assert [c.text for c in candidates(analyze(text), names)] == expected


def test_names_with_spaces_are_quoted_and_replace_the_typed_word(names: KnownNames) -> None:
    names.add_queue("my queue")
    found = candidates(analyze("queue.purge 'my"), names)
    assert [(c.text, c.start) for c in found] == [("'my queue'", -3)]


def test_option_values_replace_only_the_part_after_the_equals_sign(names: KnownNames) -> None:
    found = candidates(analyze("queue.declare q x-queue-type=quo"), names)
    assert [(c.text, c.start) for c in found] == [("quorum", -3)]


def test_forgotten_names_are_no_longer_offered(names: KnownNames) -> None:
    names.forget_queue("testqueue")
    names.forget_exchange("testexchange")
    assert [c.text for c in candidates(analyze("queue.purge "), names)] == ["tasks"]
    assert "testexchange" not in [c.text for c in candidates(analyze("queue.bind q "), names)]


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("", None),
        ("qu", None),
        ("queue.pur", "queue.purge queue"),
        (
            "queue.declare ",
            "queue.declare [queue] passive:no durable:no exclusive:no auto_delete:no",
        ),
        (
            "queue.declare q ye",
            "queue.declare queue [passive:no] durable:no exclusive:no auto_delete:no",
        ),
        (
            "queue.declare q durable=",
            "queue.declare queue passive:no [durable:no] exclusive:no auto_delete:no",
        ),
        ("basic.get q ", "basic.get queue [no_ack:off]"),
    ],
)
def test_the_signature_of_the_command_being_typed_marks_the_current_argument(
    text: str, plain: str | None
) -> None:
    hint = signature_hint(text)
    assert (hint.plain() if hint else None) == plain


def test_the_completer_adapts_the_analysis_for_prompt_toolkit(names: KnownNames) -> None:
    completer = ShellCompleter(names)
    doc = Document("queue.bind testqueue test")
    found = list(completer.get_completions(doc, CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position, c.display_meta_text) for c in found] == [
        ("testexchange", -4, "exchange")
    ]
    doc = Document("dec")
    found = list(completer.get_completions(doc, CompleteEvent(completion_requested=True)))
    assert [c.text for c in found] == ["exchange.declare", "queue.declare"]
    assert found[0].display_meta_text == "Declare an exchange."


def test_the_toolbar_highlights_the_current_argument() -> None:
    fragments = list(toolbar_text("queue.delete q "))
    assert ("reverse bold", "if_unused:no") in fragments
    assert ("", "if_empty:no") in fragments
    assert "Tab completes" in "".join(text for _style, text, *_ in toolbar_text(""))
