"""SMTP sessions kept open across messages: reused, reopened when stale, never a resend."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from eduflow.db import session_scope
from tests.conftest import SmtpSink
from tests.factories import make_course, make_enrollment, make_user
from tests.jobs.conftest import recipients, set_env


class SessionSink(SmtpSink):
    """An SMTP server that counts sessions and can misbehave like real ones do."""

    def __init__(self) -> None:
        super().__init__()
        self.ehlos = 0
        self.per_session_limit = 0  # >0: answer 421 to MAIL after this many messages
        self.drop_after_data = False  # keep the message, then cut the connection
        self._sent: dict[int, int] = {}
        self._servers: list[Any] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Count the sessions opened."""
        self.ehlos += 1
        self._servers.append(server)
        session.host_name = hostname  # a handler's EHLO hook must record it
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse with 421 once a session carried ``per_session_limit`` messages."""
        if self.per_session_limit and self._sent.get(id(session), 0) >= self.per_session_limit:
            return "421 too many messages in this session"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message; optionally drop the connection before answering."""
        self._sent[id(session)] = self._sent.get(id(session), 0) + 1
        reply = await super().handle_DATA(server, session, envelope)
        if self.drop_after_data:
            server.transport.close()
        return reply

    def drop_sessions(self) -> None:
        """Close every open session from the server side (an idle timeout)."""
        loop = self.controller.loop
        for server in self._servers:
            loop.call_soon_threadsafe(server.transport.close)
        self._servers.clear()


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionSink]:
    """A running session-counting SMTP server, with EDUFLOW_SMTP_URL pointing at it."""
    from eduflow.jobs.mailer import close_connections

    server = SessionSink()
    server.start()
    set_env(monkeypatch, smtp_url=server.url)
    try:
        yield server
    finally:
        close_connections()
        server.stop()


def _message(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "courses@eduflow.local"
    msg["To"] = f"learner{n}@example.com"
    msg["Subject"] = f"message {n}"
    msg.set_content("hello")
    return msg


def test_one_session_carries_many_enrollment_emails(sink: SessionSink) -> None:
    from eduflow.jobs.tasks import send_enrollment_email

    with session_scope() as s:
        course = make_course(s)
        ids = [make_enrollment(s, make_user(s), course).id for _ in range(5)]
    assert [send_enrollment_email(i) for i in ids] == ["sent"] * 5  # type: ignore[arg-type]
    assert len(sink.messages) == 5
    assert sink.ehlos == 1  # connect + EHLO once, not once per message


def test_a_session_closed_by_the_server_is_reopened_without_losing_the_message(
    sink: SessionSink,
) -> None:
    from eduflow.jobs.mailer import send_message

    send_message(_message(1))
    sink.drop_sessions()  # the server times the idle session out
    send_message(_message(2))
    assert recipients(sink) == ["learner1@example.com", "learner2@example.com"]
    assert sink.ehlos == 2


def test_a_421_before_data_moves_to_a_fresh_session(sink: SessionSink) -> None:
    from eduflow.jobs.mailer import send_message

    sink.per_session_limit = 2
    for n in range(5):
        send_message(_message(n))
    assert recipients(sink) == [f"learner{n}@example.com" for n in range(5)]  # each once
    assert sink.ehlos == 3


def test_a_session_lost_after_data_is_not_resent_on_the_spot(sink: SessionSink) -> None:
    from eduflow.jobs.mailer import MailUnavailable, send_message

    send_message(_message(1))
    sink.drop_after_data = True  # the server may hold message 2: resending could duplicate it
    with pytest.raises(MailUnavailable):
        send_message(_message(2))
    assert recipients(sink) == ["learner1@example.com", "learner2@example.com"]
    sink.drop_after_data = False
    send_message(_message(3))  # the next message opens a new session
    assert len(sink.messages) == 3 and sink.ehlos == 2
