"""Error e-mails, as the Celery 1.0 manual describes them: a failed task mails the admins.

Settings (lowercase or the 1.0 names): ``task_send_error_emails``
(``CELERY_SEND_TASK_ERROR_EMAILS``), ``admins`` (``ADMINS``: ``(name, address)`` pairs),
``server_email`` (``SERVER_EMAIL``, the sender), ``email_host``/``email_port``/
``email_host_user``/``email_host_password``/``email_timeout``/``email_use_ssl``/
``email_use_tls``. One mail per task that ends in FAILURE (never for a retry), unless the task
sets ``disable_error_emails``. Sent from the pool (thread or child) that ran the task, with
:mod:`smtplib`; a mail that cannot be sent is logged and changes nothing else.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

__all__ = ["configure", "enabled", "report_failure"]

log = logging.getLogger("worker.mail")

_settings: dict[str, Any] = {}

SUBJECT = "[{hostname}] Error: Task {name} ({id}): {exc}"
BODY = """Task {name} with id {id} raised exception:
{exc}

Task was called with args: {args} kwargs: {kwargs}.

The full traceback:

{traceback}

--
Sent by the amqptool worker {hostname}.
"""


def configure(settings: Mapping[str, Any]) -> None:
    """Take the resolved settings (before the pool starts: prefork children inherit them)."""
    _settings.clear()
    if settings.get("task_send_error_emails") and settings.get("admins"):
        _settings.update(settings)


def enabled() -> bool:
    return bool(_settings)


def _recipients(admins: Any) -> list[str]:
    out = []
    for admin in admins or ():
        if isinstance(admin, str):
            out.append(admin)
        elif isinstance(admin, list | tuple) and len(admin) == 2:
            out.append(f"{admin[0]} <{admin[1]}>")
    return out


def report_failure(task: Any, message: Any, hostname: str, fields: Mapping[str, Any]) -> None:
    """Mail the admins about ``task`` failing with ``fields`` (the ``task-failed`` event's)."""
    if not _settings:
        return
    own = getattr(task, "celery_task", None)
    if getattr(task, "disable_error_emails", False) or getattr(own, "disable_error_emails", False):
        return
    values = {
        "hostname": hostname,
        "name": message.task,
        "id": message.id,
        "exc": fields.get("exception", ""),
        "args": message.argsrepr or repr(tuple(message.args)),
        "kwargs": message.kwargsrepr or repr(message.kwargs),
        "traceback": fields.get("traceback") or "(none)",
    }
    mail = EmailMessage()
    mail["Subject"] = " ".join(SUBJECT.format(**values).split())
    mail["From"] = str(_settings.get("server_email") or f"celery@{socket.gethostname()}")
    mail["To"] = ", ".join(_recipients(_settings.get("admins")))
    mail.set_content(BODY.format(**values))
    try:
        _send(mail)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("cannot send the error e-mail for %s[%s]: %s", message.task, message.id, exc)


def _send(mail: EmailMessage) -> None:
    s = _settings
    host, port = str(s.get("email_host") or "localhost"), int(s.get("email_port") or 25)
    timeout = float(s.get("email_timeout") or 2)
    smtp_class = smtplib.SMTP_SSL if s.get("email_use_ssl") else smtplib.SMTP
    with smtp_class(host, port, timeout=timeout) as smtp:
        if s.get("email_use_tls") and not s.get("email_use_ssl"):
            smtp.starttls()
        if s.get("email_host_user"):
            smtp.login(str(s["email_host_user"]), str(s.get("email_host_password") or ""))
        smtp.send_message(mail)
