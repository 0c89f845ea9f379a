"""Password reset over real PostgreSQL, Redis, RQ and SMTP: the token comes from the email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from eduflow.db import session_scope
from eduflow.models import AccountToken, AuditRecord
from tests.account_helpers import API, bearer, deliver, links, tokens
from tests.factories import DEFAULT_PASSWORD, make_user

RESET = f"{API}/auth/password-reset/"
CONFIRM = f"{API}/auth/password-reset/confirm/"
NEW = "a-brand-new-pass-1"


def _reset_token(client: Any, smtp_server: Any, email: str) -> str:
    assert client.post(RESET, json={"email": email}).status_code == 202
    deliver()
    found = links(smtp_server, "reset-password")
    assert found, "no reset email arrived"
    return found[-1]


def test_the_emailed_link_resets_the_password_and_ends_every_login(
    client: Any, session: Any, smtp_server: Any
) -> None:
    make_user(session, username="forgetful", email="forgetful@example.com", full_name="Fo Getful")
    session.commit()
    first = tokens(client, "forgetful", DEFAULT_PASSWORD)
    second = tokens(client, "forgetful", DEFAULT_PASSWORD)

    token = _reset_token(client, smtp_server, "Forgetful@Example.com")
    [message] = smtp_server.messages
    assert message["To"] == "forgetful@example.com"
    assert message["Subject"] == "Reset your EduFlow password"
    assert "Hello Fo Getful" in message.get_body(("plain",)).get_content()
    assert (
        "http://localhost:8000/reset-password?token=" in message.get_body(("plain",)).get_content()
    )

    done = client.post(CONFIRM, json={"token": token, "password": NEW})
    assert done.status_code == 204, done.text
    for pair in (first, second):
        assert client.get(f"{API}/auth/me/", headers=bearer(pair["access"])).status_code == 401
        assert (
            client.post(f"{API}/auth/refresh/", json={"refresh": pair["refresh"]}).status_code
            == 401
        )
    assert (
        client.post(
            f"{API}/auth/login/", json={"username": "forgetful", "password": DEFAULT_PASSWORD}
        ).status_code
        == 401
    )
    tokens(client, "forgetful", NEW)
    # Stored only as a hash.
    with session_scope(read_only=True) as s:
        stored = s.execute(select(AccountToken.token_hash)).scalars().all()  # type: ignore[call-overload]
        assert token not in stored and len(stored) == 1
        actions = s.execute(select(AuditRecord.action)).scalars().all()  # type: ignore[call-overload]
    assert actions == ["user.password_reset"]


def test_reused_expired_and_wrong_tokens_are_400(
    client: Any, session: Any, smtp_server: Any
) -> None:
    make_user(session, username="again", email="again@example.com")
    session.commit()
    token = _reset_token(client, smtp_server, "again@example.com")
    assert client.post(CONFIRM, json={"token": token, "password": NEW}).status_code == 204
    reused = client.post(CONFIRM, json={"token": token, "password": "another-pass-22"})
    assert reused.status_code == 400
    assert reused.json()["type"].endswith("/invalid-token")
    assert reused.headers["content-type"].startswith("application/problem+json")

    wrong = client.post(CONFIRM, json={"token": token[:-2] + "xx", "password": NEW})
    assert wrong.status_code == 400
    assert client.post(CONFIRM, json={"token": "x" * 500, "password": NEW}).status_code == 422

    expiring = _reset_token(client, smtp_server, "again@example.com")
    with session_scope() as s:
        s.execute(
            update(AccountToken)
            .where(AccountToken.used_at.is_(None))  # type: ignore[union-attr]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.post(CONFIRM, json={"token": expiring, "password": NEW}).status_code == 400


def test_any_password_change_spends_the_link(
    client: Any, session: Any, smtp_server: Any, cli: Any
) -> None:
    make_user(session, username="changer", email="changer@example.com")
    session.commit()
    token = _reset_token(client, smtp_server, "changer@example.com")
    pair = tokens(client, "changer", DEFAULT_PASSWORD)
    changed = client.post(
        f"{API}/auth/password/",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW},
        headers=bearer(pair["access"]),
    )
    assert changed.status_code == 204
    assert (
        client.post(CONFIRM, json={"token": token, "password": "third-pass-333"}).status_code == 400
    )

    token = _reset_token(client, smtp_server, "changer@example.com")
    result = cli(
        "admin", "users", "set-password", "changer", "--password-stdin", input="fourth-pass-44\n"
    )
    assert result.exit_code == 0
    assert (
        client.post(CONFIRM, json={"token": token, "password": "fifth-pass-555"}).status_code == 400
    )


def test_a_bad_new_password_is_422_and_leaves_the_link_usable(
    client: Any, session: Any, smtp_server: Any
) -> None:
    make_user(session, username="weakling", email="weak@example.com")
    session.commit()
    token = _reset_token(client, smtp_server, "weak@example.com")
    weak = client.post(CONFIRM, json={"token": token, "password": "12345678"})
    assert weak.status_code == 422
    assert client.post(CONFIRM, json={"token": token, "password": NEW}).status_code == 204


def test_unknown_inactive_and_deleted_addresses_get_202_and_no_email(
    client: Any, session: Any, smtp_server: Any
) -> None:
    make_user(session, username="sleeper", email="sleeper@example.com", is_active=False)
    session.commit()
    for email in ("nobody@example.com", "sleeper@example.com"):
        response = client.post(RESET, json={"email": email})
        assert response.status_code == 202 and response.content == b""
    deliver()
    assert smtp_server.messages == []
    with session_scope(read_only=True) as s:
        assert s.execute(select(AccountToken)).first() is None


def test_one_request_is_one_email_even_when_the_job_runs_twice(
    client: Any, session: Any, smtp_server: Any
) -> None:
    from eduflow.jobs.account_emails import send_password_reset

    make_user(session, username="twice", email="twice@example.com")
    session.commit()
    assert send_password_reset("twice@example.com", "k" * 32) == "sent"
    assert send_password_reset("twice@example.com", "k" * 32) == "already-sent"
    assert len(smtp_server.messages) == 1


def test_requests_are_throttled_per_email_and_per_address(
    client: Any, session: Any, monkeypatch: Any
) -> None:
    from tests.jobs.conftest import set_env

    set_env(monkeypatch, password_reset_max_per_email="2", password_reset_max_per_ip="4")
    for _ in range(2):
        assert client.post(RESET, json={"email": "target@example.com"}).status_code == 202
    blocked = client.post(RESET, json={"email": "TARGET@example.com"})
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 3600
    assert blocked.json()["type"].endswith("/throttled")
    # Another address still passes until the client address is used up (every request
    # counts against it, the refused one too: 4 so far).
    assert client.post(RESET, json={"email": "other1@example.com"}).status_code == 202
    assert client.post(RESET, json={"email": "other2@example.com"}).status_code == 429


def test_known_and_unknown_addresses_cost_the_same(
    client: Any, session: Any, smtp_server: Any, monkeypatch: Any
) -> None:
    """No enumeration: the request does the same work for both (asserted on the SQL it
    runs and the jobs it records), and paired runs take the same time (median ratio)."""
    import statistics
    import time

    from eduflow.models import OutboxJob
    from tests.jobs.conftest import set_env
    from tests.queries import counted_queries

    set_env(monkeypatch, password_reset_max_per_email="100", password_reset_max_per_ip="100")
    make_user(session, username="known", email="known@example.com")
    session.commit()

    def work(email: str) -> list[str]:
        with counted_queries() as statements:
            assert client.post(RESET, json={"email": email}).status_code == 202
        # The outbox's batched relay marks run on their own thread, at their own time.
        return [s for s in statements if "relayed_at" not in s]

    assert work("known@example.com") == work("unknown@example.com")
    with session_scope(read_only=True) as s:
        jobs = s.execute(select(OutboxJob.job_name)).scalars().all()  # type: ignore[call-overload]
    assert jobs == ["send_password_reset", "send_password_reset"]

    def cost(email: str) -> float:
        t = time.perf_counter()
        assert client.post(RESET, json={"email": email}).status_code == 202
        return time.perf_counter() - t

    ratios = []
    for i in range(7):  # the order alternates inside the pairs
        if i % 2:
            unknown, known = cost(f"unknown{i}@example.com"), cost("known@example.com")
        else:
            known, unknown = cost("known@example.com"), cost(f"unknown{i}@example.com")
        ratios.append(unknown / known)
    assert 0.5 < statistics.median(ratios) < 2.0, ratios


def test_one_link_sent_concurrently_resets_once(
    session: Any, smtp_server: Any, live_server: Any
) -> None:
    """Really concurrent confirmations of one link on PostgreSQL: exactly one wins."""
    import asyncio

    import httpx

    make_user(session, username="racer", email="racer@example.com")
    session.commit()
    with httpx.Client(base_url=live_server.url) as http:
        assert http.post(RESET, json={"email": "racer@example.com"}).status_code == 202
    deliver()
    [token] = links(smtp_server, "reset-password")

    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
            responses = await asyncio.gather(
                *(
                    http.post(CONFIRM, json={"token": token, "password": f"racing-pass-{i:02d}"})
                    for i in range(8)
                )
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(fire())
    assert sorted(statuses) == [204] + [400] * 7, statuses
    with session_scope(read_only=True) as s:
        audits = s.execute(select(AuditRecord.action)).scalars().all()  # type: ignore[call-overload]
    assert audits == ["user.password_reset"]
