"""Outgoing email: SMTP (``smtp://`` / ``smtps://``, STARTTLS, auth) or ``.eml`` files.

``EDUFLOW_SMTP_URL`` examples::

    smtp://127.0.0.1:1025                     plain, no auth (development)
    smtp://user:pass@mail.example.com:587     STARTTLS is used when the server offers it
    smtp://mail.example.com:587?starttls=require
    smtps://user:pass@mail.example.com:465    implicit TLS

Without it, every message is written as an ``.eml`` file under ``EDUFLOW_MAIL_DIR``.

Each thread keeps its SMTP session open between messages (a worker sends one message per
job). A kept session the server has closed meanwhile is noticed at MAIL or RCPT, before the
server holds any part of the message, and the message then goes out on a fresh session; a
session lost once DATA has started is never resent on the spot (the server may hold the
message), the job's retry and its marker decide instead.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from eduflow.config import get_settings


class MailUnavailable(Exception):
    """The mail server could not take the message now (transient: the job retries)."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to deliver over SMTP, parsed from ``EDUFLOW_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" | "require" | "off"
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse and validate an ``smtp://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("EDUFLOW_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("EDUFLOW_SMTP_URL has no host")
    implicit = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    starttls = (query.get("starttls") or ["auto"])[0].lower()
    if starttls not in ("auto", "require", "off"):
        raise ValueError("starttls must be one of auto, require, off")
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        implicit_tls=implicit,
        starttls="off" if implicit else starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def enrollment_message(
    *, to: str, username: str, course_title: str, course_id: int, status: str
) -> EmailMessage:
    """The confirmation email for one enrollment: subject, plain text and HTML."""
    settings = get_settings()
    link = f"{settings.public_base_url.rstrip('/')}/courses/{course_id}/"
    return _templated(
        "enrollment",
        to,
        name=username,
        course_title=course_title,
        link=link,
        pending=status == "pending",
    )


def password_reset_message(*, to: str, name: str, token: str) -> EmailMessage:
    """The password reset email: a single-use link to ``/reset-password``."""
    settings = get_settings()
    link = f"{settings.public_base_url.rstrip('/')}/reset-password?{urlencode({'token': token})}"
    minutes = max(1, settings.password_reset_ttl // 60)
    return _templated("password_reset", to, name=name, link=link, valid_minutes=minutes)


def verification_message(*, to: str, name: str, token: str) -> EmailMessage:
    """The email verification email: a link to ``/verify-email`` bound to address ``to``."""
    settings = get_settings()
    link = f"{settings.public_base_url.rstrip('/')}/verify-email?{urlencode({'token': token})}"
    return _templated("email_verification", to, name=name, email=to, link=link)


def _templated(template: str, to: str, **context: Any) -> EmailMessage:
    from eduflow.jobs.emails import render

    settings = get_settings()
    body = render(template, **context)
    msg = EmailMessage()
    msg["Subject"] = body.subject
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="eduflow.local")
    msg.set_content(body.text)
    msg.add_alternative(body.html, subtype="html")
    return msg


def job_message_id(kind: str, object_id: int | str) -> str:
    """The ``Message-ID`` of the one email a job sends about ``object_id``: the same on every
    run of the job, so a copy resent after a crash is the same message to mail servers and
    clients (they collapse duplicates by Message-ID). Ids never repeat within a database."""
    domain = parseaddr(get_settings().mail_from)[1].rpartition("@")[2] or "eduflow.local"
    return f"<eduflow.{kind}.{object_id}@{domain}>"


def completion_message(
    *,
    to: str,
    name: str,
    course_title: str,
    course_id: int,
    lessons: int,
    certificate_url: str,
    certificate_pdf_url: str,
) -> EmailMessage:
    """The congratulation email of a completed course, with the links to its certificate's
    public verification page and PDF: subject, plain text and HTML."""
    settings = get_settings()
    link = f"{settings.public_base_url.rstrip('/')}/courses/{course_id}/"
    return _templated(
        "course_completed",
        to,
        name=name,
        course_title=course_title,
        link=link,
        lessons=lessons,
        certificate_url=certificate_url,
        certificate_pdf_url=certificate_pdf_url,
    )


def waitlist_offer_message(
    *, to: str, name: str, course_title: str, entry_id: int, deadline: datetime
) -> EmailMessage:
    """The offer of a held seat to the next student in line, with its deadline."""
    settings = get_settings()
    base = settings.public_base_url.rstrip("/")
    when = deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _templated(
        "waitlist_offer",
        to,
        name=name,
        course_title=course_title,
        link=f"{base}/waitlist/{entry_id}/",
        accept_path=f"/api/v1/waitlist/{entry_id}/accept/",
        deadline=when,
    )


def send_message(msg: EmailMessage, message_id: str | None = None) -> str:
    """Deliver ``msg`` (SMTP or ``.eml`` file); returns where it went. Transient failures raise
    ``MailUnavailable``. ``message_id`` (a job's ``job_message_id``) replaces the header."""
    settings = get_settings()
    if message_id is not None:
        del msg["Message-ID"]
        msg["Message-ID"] = message_id
    if not settings.smtp_url:
        return _write_eml(msg, settings.mail_dir)
    target = _parsed_smtp_url(settings.smtp_url.get_secret_value())
    try:
        _send_smtp(msg, target, settings.smtp_timeout)
    except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
        raise MailUnavailable(
            f"SMTP server {target.host}:{target.port} unavailable: {exc}"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:  # 4xx: try again later
            raise MailUnavailable(f"SMTP temporary failure {exc.smtp_code}") from exc
        raise
    return f"smtp://{target.host}:{target.port}"


def close_connections() -> None:
    """Say QUIT on this thread's kept SMTP connection (worker shutdown, tests)."""
    kept: _Kept | None = getattr(_kept, "conn", None)
    _kept.conn = None
    if kept is not None and kept.pid == os.getpid():
        with contextlib.suppress(Exception):
            kept.client.quit()


@lru_cache(maxsize=8)
def _parsed_smtp_url(url: str) -> SmtpTarget:
    return parse_smtp_url(url)


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    # smtplib would call socket.getfqdn() (a DNS lookup) for every connection.
    return socket.getfqdn()


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Loading the system CA bundle costs tens of milliseconds of CPU: do it once per process,
    # and only when TLS is actually used.
    return ssl.create_default_context()


class _SMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that remembers whether the message body (DATA) was started."""

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        """Note that the server may now hold the message: resending could duplicate it."""
        self.data_started = True
        return super().data(msg)


class _SMTPSSL(smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` that remembers whether the message body (DATA) was started."""

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        """Note that the server may now hold the message: resending could duplicate it."""
        self.data_started = True
        return super().data(msg)


@dataclass(slots=True)
class _Kept:
    """One open SMTP session, reused for the next messages of the same thread and process."""

    client: _SMTP | _SMTPSSL
    target: SmtpTarget
    timeout: float
    pid: int


# One connection per thread: an RQ worker sends from one thread, so a worker process keeps
# one session open instead of paying connect + EHLO (+ STARTTLS + AUTH) + QUIT per message.
_kept = threading.local()


def _send_smtp(msg: EmailMessage, target: SmtpTarget, timeout: float) -> None:
    kept: _Kept | None = getattr(_kept, "conn", None)
    if kept is not None and (
        kept.pid != os.getpid() or kept.target != target or kept.timeout != timeout
    ):
        if kept.pid == os.getpid():  # never talk on a session inherited from a parent process
            with contextlib.suppress(Exception):
                kept.client.close()
        kept = _kept.conn = None
    if kept is not None:
        try:
            _deliver(kept.client, msg)
            return
        except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
            # A timeout is not a closed session, and waiting twice could outlive the job lock.
            stale = (
                not kept.client.data_started
                and not isinstance(exc, TimeoutError)
                and (not isinstance(exc, smtplib.SMTPResponseException) or exc.smtp_code == 421)
            )
            _drop(kept)
            if not stale:
                raise
            # The server closed the idle session before it saw any of the message (MAIL or
            # RCPT failed): sending again on a fresh session cannot duplicate it.
        except BaseException:
            _drop(kept)
            raise
    client = _connect(target, timeout)
    kept = _kept.conn = _Kept(client, target, timeout, os.getpid())
    try:
        _deliver(client, msg)
    except BaseException:
        _drop(kept)
        raise


def _deliver(client: _SMTP | _SMTPSSL, msg: EmailMessage) -> None:
    client.data_started = False
    client.send_message(msg)


def _drop(kept: _Kept) -> None:
    if getattr(_kept, "conn", None) is kept:
        _kept.conn = None
    with contextlib.suppress(Exception):
        kept.client.close()


def _connect(target: SmtpTarget, timeout: float) -> _SMTP | _SMTPSSL:
    client: _SMTP | _SMTPSSL
    name = _local_hostname()
    if target.implicit_tls:
        client = _SMTPSSL(target.host, target.port, name, timeout=timeout, context=_tls_context())
    else:
        client = _SMTP(target.host, target.port, name, timeout=timeout)
    try:
        if client.sock is not None:  # smtplib writes small pieces: avoid Nagle/delayed-ACK stalls
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.ehlo()
        if not target.implicit_tls and target.starttls != "off":
            if client.has_extn("starttls"):
                client.starttls(context=_tls_context())
                client.ehlo()
            elif target.starttls == "require":
                raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")
        if target.username:
            client.login(target.username, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


def _write_eml(msg: EmailMessage, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msg.as_bytes())
    tmp.replace(path)  # readers never see a half-written message
    return str(path)
