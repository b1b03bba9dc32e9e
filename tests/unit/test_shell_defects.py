"""The shell's parsing and command-line defects of issue 18, each pinned (pure, no broker)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from kombu.connection import Connection as KombuConnection

from amqptool.cli import camqadm_main
from amqptool.errors import SettingsError, UsageError
from amqptool.settings import BrokerSettings, TLSOptions
from amqptool.shell.core.jsonl import envelope_from_line
from amqptool.shell.core.lexer import split_words
from amqptool.shell.core.parser import parse_line
from amqptool.shell.modes import _without_bom
from amqptool.shell.watchdog import CommandTimeout, Watchdog


def test_a_hash_comment_after_the_arguments_is_dropped() -> None:
    cmd = parse_line("queue.declare q   # a scratch queue, durable no")
    assert cmd is not None and cmd.values["queue"] == "q" and cmd.values["durable"] is False


def test_topic_wildcards_stay_routing_keys() -> None:
    for key in ("#", "a.#", "#.b", "a#b"):
        cmd = parse_line(f"queue.bind q amq.topic {key}")
        assert cmd is not None and cmd.values["routing_key"] == key


def test_a_quoted_hash_followed_by_text_is_text() -> None:
    cmd = parse_line("basic.publish '# not a comment' '' q")
    assert cmd is not None and cmd.values["msg"] == "# not a comment"


def test_a_quoted_name_value_body_is_a_body_not_an_option() -> None:
    cmd = parse_line("basic.publish 'priority=5' '' q")
    assert cmd is not None
    assert cmd.values["msg"] == "priority=5" and cmd.properties == {}
    cmd = parse_line("basic.publish body '' q priority=5 headers.note='a b'")
    assert cmd is not None
    assert cmd.properties == {"priority": 5} and cmd.headers == {"note": "a b"}


def test_the_lexer_splits_like_posix_shlex() -> None:
    assert split_words("""a 'b c' "d \\" e" f\\ g '' h""") == ["a", "b c", 'd " e', "f g", "", "h"]


def test_a_url_without_a_password_gets_celerys_default() -> None:
    url = "amqp://guest@127.0.0.1:5672//"
    ep = BrokerSettings.from_url(url, environ={}).primary
    assert ep.userid == "guest"
    kombu_info = KombuConnection(url).info()  # type: ignore[no-untyped-call]  # kombu is untyped
    assert ep.password() == kombu_info["password"] == "guest"


def test_tls_options_with_a_plain_amqp_url_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    with pytest.raises(SettingsError, match=r"--ssl-ca needs an amqps:// URL") as err:
        BrokerSettings.from_url("amqp://h//", tls=TLSOptions(ca_file=str(ca)), environ={})
    assert err.value.hint is not None and "amqps://h:5671" in err.value.hint
    settings = BrokerSettings.from_url("amqps://h//", tls=TLSOptions(ca_file=str(ca)), environ={})
    assert settings.primary.ssl


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_camqadm_names_itself(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        camqadm_main([flag])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("camqadm") or out.startswith("usage: camqadm")
    assert "amqptool shell" not in out


def test_a_byte_order_mark_at_the_top_is_dropped() -> None:
    assert list(_without_bom(["\ufeffqueue.declare q\n", "\ufeffx\n"])) == [
        "queue.declare q\n",
        "\ufeffx\n",
    ]


def test_the_watchdog_interrupts_a_stuck_wait() -> None:
    dog = Watchdog(0.2)
    with pytest.raises(CommandTimeout), dog.guard():
        time.sleep(30)


def test_progress_restarts_the_watchdog_count() -> None:
    dog = Watchdog(1.0)
    steps = 0
    with dog.guard():
        for _ in range(4):
            time.sleep(0.1)
            dog.alive()
            steps += 1
    assert steps == 4


def test_the_watchdog_puts_back_an_alarm_it_found() -> None:
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 100)
        with Watchdog(5).guard():
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < left <= 100
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_line_that_is_not_an_exported_message_names_its_place() -> None:
    with pytest.raises(UsageError, match=r"^f line 3: not an exported message"):
        envelope_from_line('{"properties": {"priority": "high"}}', "f line 3")
    env = envelope_from_line('{"body_base64": "/wA=", "routing_key": "k"}', "f line 1")
    assert (env.body, env.routing_key) == (b"\xff\x00", "k")
