"""The worker's pidbox (docs/protocol.md §4.1-4.3): control requests in, ``{node: reply}`` out.

Requests arrive on ``<nodename>.celery.pidbox`` (declared by :mod:`worker.runtime.link`), on the
broker thread. For each: adjust the mailbox clock from the ``clock`` header and forward the
worker's Lamport clock; run it only if ``destination`` names us, or ``pattern``/``matcher``
match, or neither is given; dispatch through :mod:`worker.control.registry`; reply (unless the
request wants none, or the command returns ``NO_REPLY``) to ``reply_to.exchange`` with routing key
``reply_to.routing_key``, headers ``ticket`` and ``clock`` (ints only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from amqptool.codec.control import decode_request, encode_reply
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import LamportClock
from amqptool.codec.signing import Verifier, sign
from amqptool.errors import AmqpToolError, BrokerError
from worker.control import registry as control

__all__ = ["Mailbox"]

log = logging.getLogger("worker.control")


class Mailbox:
    def __init__(
        self,
        nodename: str,
        clock: LamportClock,
        panel: control.Panel,
        reply: Callable[[Envelope], None],
        key: bytes | None = None,
    ) -> None:
        self.nodename = nodename
        self.clock = clock
        self.mailbox_clock = LamportClock()
        self.panel = panel
        self._send = reply
        self.key = key
        self.verifier = Verifier(key) if key is not None else None
        self.refused = 0  # requests refused for their signature

    def reply(self, env: Envelope) -> None:
        self._send(sign(env, self.key) if self.key is not None else env)

    def on_message(self, env: Envelope) -> None:
        try:
            self.mailbox_clock.adjust(env.headers.get("clock"))
            req = decode_request(env)
        except AmqpToolError as exc:
            log.warning("Ignored an unreadable control message: %s", exc)
            return
        self.clock.forward()
        if not req.matches(self.nodename):
            return
        refused = self.verifier.check(env) if self.verifier is not None else ""
        if refused:
            self.refused += 1
            log.warning("Refused control command %r: %s", req.method, refused)
            reply: Any = {
                "error": f"control command refused: {refused} (this worker needs "
                "commands signed with its control key)"
            }
        else:
            reply = control.dispatch(self.panel, req.method, req.arguments)
        if reply is control.NO_REPLY or not req.wants_reply or req.reply_to is None:
            return
        assert req.ticket is not None
        clock = self.mailbox_clock.forward()
        try:
            out = encode_reply(
                self.nodename, reply, ticket=req.ticket, clock=clock, reply_to=req.reply_to
            )
        except AmqpToolError as exc:
            out = encode_reply(
                self.nodename,
                {"error": f"reply not serializable: {exc}"},
                ticket=req.ticket,
                clock=clock,
                reply_to=req.reply_to,
            )
        try:
            self.reply(out)
        except BrokerError as exc:
            log.warning("could not reply to %s: %s", req.method, exc)
