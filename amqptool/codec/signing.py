"""Signed remote control: HMAC-SHA256 with a shared key, a timestamp and a nonce. Pure.

With a key configured, the control client signs every request and the worker signs every
reply; each side refuses what is unsigned, wrongly signed, outside the time window, or a nonce
it has already seen in that window (a replay). The signature travels in one header::

    x-amqptool-signature: v1:<unix seconds>:<nonce>:<hex HMAC-SHA256>

over the canonical form ``amqptool-control-v1 \\n ts \\n nonce \\n ticket \\n content_type \\n
content_encoding \\n body`` (the ``ticket`` header binds a reply to its request; a request
carries its ticket in the body). Celery workers ignore the header, so signed requests still
reach them. This protects the control plane only: task messages are not signed, and anyone
with broker credentials can still read, publish and delete on the broker.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace

from amqptool.codec.envelope import Envelope
from amqptool.errors import SettingsError

__all__ = [
    "DEFAULT_WINDOW",
    "MIN_KEY_BYTES",
    "SIGNATURE_HEADER",
    "Verifier",
    "load_control_key",
    "sign",
]

SIGNATURE_HEADER = "x-amqptool-signature"
DEFAULT_WINDOW = 60.0
MIN_KEY_BYTES = 16
_MAX_NONCES = 100_000
_TAG = b"amqptool-control-v1"


def _mac(key: bytes, ts: int, nonce: str, env: Envelope) -> str:
    props = env.properties
    ticket = (props.headers or {}).get("ticket")
    parts = [
        _TAG,
        str(ts).encode(),
        nonce.encode(),
        str(ticket if ticket is not None else "").encode(),
        (props.content_type or "").encode(),
        (props.content_encoding or "").encode(),
        bytes(env.body),
    ]
    return hmac.new(key, b"\n".join(parts), hashlib.sha256).hexdigest()


def sign(
    env: Envelope, key: bytes, *, now: float | None = None, nonce: str | None = None
) -> Envelope:
    """A copy of *env* with the signature header added."""
    ts = int(time.time() if now is None else now)
    nonce = nonce or secrets.token_hex(16)
    headers = dict(env.properties.headers or {})
    headers[SIGNATURE_HEADER] = f"v1:{ts}:{nonce}:{_mac(key, ts, nonce, env)}"
    return replace(env, properties=replace(env.properties, headers=headers))


class Verifier:
    """Checks signatures for one receiver; remembers nonces for the time window."""

    def __init__(self, key: bytes, *, window: float = DEFAULT_WINDOW) -> None:
        self.key = key
        self.window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check(self, env: Envelope, *, now: float | None = None) -> str:
        """``""`` when *env* is signed with our key, fresh and not replayed; else why not."""
        now = time.time() if now is None else now
        value = (env.properties.headers or {}).get(SIGNATURE_HEADER)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return "unsigned"
        fields = value.split(":")
        if len(fields) != 4 or fields[0] != "v1" or not fields[1].isascii():
            return "malformed signature"
        _, ts_text, nonce, mac = fields
        if not ts_text.isdigit() or not 8 <= len(nonce) <= 64:
            return "malformed signature"
        ts = int(ts_text)
        if abs(now - ts) > self.window:
            return f"signature timestamp is {now - ts:+.0f} s off (window {self.window:g} s)"
        if not hmac.compare_digest(mac, _mac(self.key, ts, nonce, env)):
            return "wrong signature"
        self._purge(now)
        if nonce in self._seen:
            return "replayed (nonce already seen)"
        self._seen[nonce] = float(ts)
        return ""

    def _purge(self, now: float) -> None:
        while self._seen:
            nonce, ts = next(iter(self._seen.items()))
            if ts >= now - self.window and len(self._seen) < _MAX_NONCES:
                break
            del self._seen[nonce]


def load_control_key(
    path: str | None = None, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The shared control key: ``--control-key-file``, ``$AMQPTOOL_CONTROL_KEY`` (the key
    itself) or ``$AMQPTOOL_CONTROL_KEY_FILE``; None when none is configured."""
    env = os.environ if environ is None else environ
    what = "--control-key-file"
    if not path:
        text = env.get("AMQPTOOL_CONTROL_KEY")
        if text:
            return _check(text.strip().encode(), "$AMQPTOOL_CONTROL_KEY")
        path = env.get("AMQPTOOL_CONTROL_KEY_FILE")
        what = "$AMQPTOOL_CONTROL_KEY_FILE"
        if not path:
            return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(4097)
    except OSError as exc:
        raise SettingsError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > 4096:
        raise SettingsError(f"{what}: {path} is larger than 4096 bytes")
    return _check(data.strip(), f"{what} {path}")


def _check(key: bytes, what: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(
            f"{what}: the control key has {len(key)} bytes, at least {MIN_KEY_BYTES} needed"
        )
    return key
