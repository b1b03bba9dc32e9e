"""The guard helpers: visible text, signed control, reply validation, URL files, 0600 files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amqptool.codec.control import encode_reply
from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.signing import SIGNATURE_HEADER, Verifier, load_control_key, sign
from amqptool.control.collect import ReplyCollector
from amqptool.errors import SettingsError
from amqptool.private import atomic_write, create_private, ensure_private
from amqptool.settings import BrokerSettings
from amqptool.textsafe import CONTROL_CODES, one_line, visible

KEY = b"k" * 32
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x1b]8;;http://x\x1b\\\u202e\r\x7f"


def test_visible_leaves_no_control_character() -> None:
    for text in (HOSTILE, "".join(map(chr, CONTROL_CODES))):
        shown = visible(text)
        assert not any(ord(c) in CONTROL_CODES and c != "\n" for c in shown)
        assert "\x1b" not in shown and "\x9b" not in shown
    assert visible("a\nb\tc") == "a\nb\tc"
    assert one_line("a\nb") == "a\\nb"
    assert visible("\x1b[2J") == "\\x1b[2J"
    assert visible("\u202e") == "\\u202e"


def _reply(node: str, body: object, ticket: str = "t1") -> Envelope:
    return encode_reply(
        node, body, ticket=ticket, clock=1, reply_to={"exchange": "x", "routing_key": "r"}
    )


def _raw(body: bytes, ticket: str = "t1") -> Envelope:
    props = Properties(content_type="application/json", content_encoding="utf-8")
    props.headers = {"ticket": ticket}
    return Envelope(body=body, properties=props)


@pytest.mark.parametrize(
    "env",
    [
        _raw(b"not json"),
        _raw(b"[1, 2]"),
        _raw(b"{}"),
        _raw(json.dumps({"a@h": {"ok": 1}, "b@h": {"ok": 1}}).encode()),
        _raw(json.dumps({"evil\x1b]0;x\x07@h": {"ok": "pong"}}).encode()),
        _raw(json.dumps({"two words": {"ok": "pong"}}).encode()),
        _raw(json.dumps({"x" * 300: {"ok": "pong"}}).encode()),
    ],
)
def test_a_malformed_reply_is_kept_aside_not_counted(env: Envelope) -> None:
    col = ReplyCollector("t1", timeout=1.0, started=0.0)
    assert not col.offer(env, 0.0)
    assert col.replies == {} and col.count == 0
    assert len(col.malformed) == 1
    assert "\x1b" not in col.malformed[0]


def test_a_well_formed_reply_counts() -> None:
    col = ReplyCollector("t1", timeout=1.0, started=0.0)
    assert col.offer(_reply("w1@host", {"ok": "pong"}), 0.0)
    assert col.replies == {"w1@host": {"ok": "pong"}} and col.malformed == []


def test_signed_reply_checks() -> None:
    verifier = Verifier(KEY)
    col = ReplyCollector("t1", timeout=1.0, started=0.0)
    col.verify = verifier.check
    col.offer(_reply("rogue@host", {"ok": "pong"}), 0.0)  # unsigned
    col.offer(sign(_reply("rogue@host", {"ok": "pong"}), b"w" * 32), 0.0)  # other key
    assert col.replies == {} and len(col.malformed) == 2
    assert "unsigned" in col.malformed[0] and "wrong signature" in col.malformed[1]
    col.offer(sign(_reply("w1@host", {"ok": "pong"}), KEY), 0.0)
    assert list(col.replies) == ["w1@host"]


def test_verifier_refuses_tampering_staleness_and_replay() -> None:
    env = sign(_reply("w1@host", {"ok": "pong"}), KEY, now=1000.0, nonce="n" * 32)
    verifier = Verifier(KEY, window=60)
    assert verifier.check(env, now=1010.0) == ""
    assert "replayed" in verifier.check(env, now=1011.0)
    assert "off" in Verifier(KEY).check(env, now=2000.0)
    tampered = Envelope(body=env.body.replace(b"pong", b"gnop"), properties=env.properties)
    assert Verifier(KEY).check(tampered, now=1000.0) == "wrong signature"
    other_ticket = sign(_reply("w1@host", {"ok": "pong"}, ticket="t2"), KEY, now=1000.0)
    headers = dict(other_ticket.properties.headers)
    headers["ticket"] = "t1"  # a recorded reply moved to another request
    moved = Envelope(
        body=other_ticket.body,
        properties=Properties(**{**other_ticket.properties.__dict__, "headers": headers}),
    )
    assert Verifier(KEY).check(moved, now=1000.0) == "wrong signature"
    for bad in ("v1:x:y:z", "v2:1:nnnnnnnn:00", "junk", 42):
        props = Properties(headers={SIGNATURE_HEADER: bad})
        assert Verifier(KEY).check(Envelope(body=b"{}", properties=props), now=1.0) != ""


def test_control_key_sources(tmp_path: Path) -> None:
    assert load_control_key(None, {}) is None
    assert load_control_key(None, {"AMQPTOOL_CONTROL_KEY": "s" * 20}) == b"s" * 20
    path = tmp_path / "key"
    path.write_text("x" * 24 + "\n")
    assert load_control_key(str(path), {}) == b"x" * 24
    assert load_control_key(None, {"AMQPTOOL_CONTROL_KEY_FILE": str(path)}) == b"x" * 24
    with pytest.raises(SettingsError, match="at least 16"):
        load_control_key(None, {"AMQPTOOL_CONTROL_KEY": "short"})
    with pytest.raises(SettingsError, match="cannot read"):
        load_control_key(str(tmp_path / "missing"), {})
    settings = BrokerSettings.from_url("amqp://u:p@h//", environ={}, control_key_file=str(path))
    assert settings.control_key == b"x" * 24 and "x" * 24 not in repr(settings)


def test_broker_url_from_files_and_env(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text("# primary\namqp://u:secret@h1//\n\namqp://u:secret@h2:5673/v\n")
    for settings in (
        BrokerSettings.from_url(f"@{path}", environ={}),
        BrokerSettings.from_url(None, environ={}, url_file=str(path)),
        BrokerSettings.from_url(None, environ={"AMQP_URL_FILE": str(path)}),
        BrokerSettings.from_url(None, environ={"CELERY_BROKER_URL_FILE": str(path)}),
    ):
        assert [e.host for e in settings.endpoints] == ["h1", "h2"]
        assert settings.primary.password() == "secret"
    env = {"AMQP_URL": "amqp://a:b@first//", "AMQP_URL_FILE": str(path)}
    assert BrokerSettings.from_url(None, environ=env).primary.host == "first"
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(SettingsError, match="holds no broker URL"):
        BrokerSettings.from_url(f"@{empty}", environ={})
    with pytest.raises(SettingsError, match="cannot read"):
        BrokerSettings.from_url(None, environ={}, url_file=str(tmp_path / "nope"))
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(SettingsError, match="not UTF-8"):
        BrokerSettings.from_url(f"@{binary}", environ={})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh"
        assert ensure_private(fresh, "--state") == ""
        assert _mode(fresh) == 0o600
        wide = tmp_path / "wide"
        wide.write_text("data")
        wide.chmod(0o644)
        side = tmp_path / "wide-wal"
        side.write_text("wal")
        side.chmod(0o666)
        note = ensure_private(wide, "--state", companions=("-wal", "-shm"))
        assert "tightened" in note and "644" in note
        assert _mode(wide) == 0o600 and _mode(side) == 0o600
        exported = tmp_path / "export.jsonl"  # the shell's queue.export
        with create_private(exported) as fh:
            fh.write("{}\n")
        assert _mode(exported) == 0o600
        with pytest.raises(FileExistsError):
            create_private(exported)
        target = tmp_path / "atomic"
        target.write_text("old")
        target.chmod(0o644)
        atomic_write(target, "new")
        assert target.read_text() == "new" and _mode(target) == 0o600
    finally:
        os.umask(old)


def test_worker_log_records_escape_messages_and_tracebacks() -> None:
    import logging
    import sys

    from worker.cli import RecordFormatter

    try:
        raise ValueError(HOSTILE + "\n[2026-01-01 00:00:00,000: ERROR/MainProcess] forged")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "worker", logging.ERROR, __file__, 1, "Task t[%s] failed", (HOSTILE,), exc_info
    )
    text = RecordFormatter("[%(levelname)s] %(message)s").format(record)
    assert not any(ord(c) in CONTROL_CODES and c != "\n" for c in text)
    assert all(line.startswith(("[ERROR]", " ", "Traceback")) for line in text.splitlines())
    assert "\\x1b]0;pwned" in text
