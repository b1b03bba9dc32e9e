"""Error e-mails (Celery 1.0's settings) received by a real SMTP server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from amqptool.client import Client
from tests.dropin_support import clean_env, worker_running
from tests.harness import unique, wait_until

WAIT = 30


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:  # aiosmtpd's hook name
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free loopback port (the controller wants one named)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_a_failed_task_mails_the_admins_a_retry_does_not(
    smtp: tuple[Inbox, int], broker_url: str, tmp_path: Path
) -> None:
    inbox, port = smtp
    queue = unique("mail")
    (tmp_path / "mailconf.py").write_text(
        "CELERY_SEND_TASK_ERROR_EMAILS = True\n"
        "ADMINS = [('Admin', 'admin@example.com')]\n"
        "SERVER_EMAIL = 'worker@example.com'\n"
        "EMAIL_HOST = '127.0.0.1'\n"
        f"EMAIL_PORT = {port}\n"
    )
    env = clean_env(tmp_path, url=broker_url)
    argv = ["-A", "ourtasks", "--config", "mailconf", "-Q", queue, "-P", "prefork", "-c", "1"]
    with worker_running(*argv, env=env, cwd=tmp_path):
        with Client(url=broker_url) as client:
            assert client.send_task("ourtasks.retries_once", queue=queue).get(timeout=WAIT) == 1
            for name in ("ourtasks.quiet_fails", "ourtasks.fails"):
                failed = client.send_task(name, ("it broke",), queue=queue)
                with pytest.raises(ValueError):
                    failed.get(timeout=WAIT)
        wait_until(lambda: inbox.mails, WAIT, message="an error e-mail")
    assert len(inbox.mails) == 1, [m["Subject"] for m in inbox.mails]
    mail = inbox.mails[0]
    assert mail["To"] == "Admin <admin@example.com>"
    assert mail["From"] == "worker@example.com"
    subject = " ".join(str(mail["Subject"]).split())  # unfolded
    assert subject.startswith("[") and "] Error: Task ourtasks.fails (" in subject
    assert subject.endswith(f"({failed.id}): ValueError('it broke')")
    body = mail.get_payload()
    assert "raise ValueError(message)" in str(body)
