"""Drill: the worker is SIGKILLed after the mail server stored a message but before it
answered 250, twice, while students enroll; a new worker is started each time.

Measured: every email carries its job's ``Message-ID``; the unique Message-IDs are exactly
the enrollments (a resent copy is the same message); each interrupted email is delivered
again within 30 s of the worker's restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from email import message_from_bytes, policy
from typing import Any

import psycopg
import pytest

from tests.ops.drills import Load, open_course_ids, seed, student_tokens
from tests.ops.stack import EduflowProcess, free_port

pytestmark = pytest.mark.slow

REDELIVERY_BUDGET_S = 30.0
HOLD_AT = (10, 35)  # the n-th stored messages are held unanswered: the worker dies meanwhile


class StoreThenStall:
    """An SMTP server (aiosmtpd) that stores each message before answering; the messages
    numbered in ``HOLD_AT`` get their answer only after a long stall."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.stored: list[tuple[float, Any]] = []
        self.held = threading.Event()
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store first (as a mail server's queue does), then answer."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.stored.append((time.monotonic(), message))
            number = len(self.stored)
        if number in HOLD_AT:
            self.held.set()
            await asyncio.sleep(60)
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [str(m["Message-ID"]) for _, m in self.stored]

    def stored_at(self, message_id: str) -> list[float]:
        with self._lock:
            return [t for t, m in self.stored if str(m["Message-ID"]) == message_id]

    def stop(self) -> None:
        self.controller.stop()


def enrollment_ids(pg_url: str, *, unsent_only: bool = False) -> set[int]:
    query = "SELECT id FROM enrollments" + (" WHERE email_sent_at IS NULL" if unsent_only else "")
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        return {int(r[0]) for r in conn.execute(query).fetchall()}


def test_killed_worker_resends_the_same_message_within_seconds(
    running_drill: dict[str, Any],
) -> None:
    pg, server, tmp = running_drill["pg"], running_drill["server"], running_drill["tmp"]
    smtp = StoreThenStall()
    env = dict(running_drill["env"], EDUFLOW_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
               EDUFLOW_LOG_LEVEL="INFO")  # fmt: skip
    seed(running_drill["env"], courses=12, students=20)
    tokens = student_tokens(server.url, 20)
    courses = open_course_ids(pg.url, min_capacity=20)[:3]
    assert len(courses) == 3
    worker = EduflowProcess(env, tmp / "worker.log", "worker")
    interrupted: list[tuple[str, float]] = []  # (Message-ID held when killed, restart time)
    try:
        with Load(server.url, tokens, courses, writers=2, readers=0, pause=0.1) as load:
            for _ in HOLD_AT:
                assert smtp.held.wait(120), "no message was held"
                smtp.held.clear()
                held_id = smtp.message_ids()[-1]
                os.kill(worker.pid, signal.SIGKILL)  # the server stored it; no 250 was read
                worker.stop()
                worker = EduflowProcess(env, tmp / "worker.log", "worker")
                interrupted.append((held_id, time.monotonic()))
            while any(t.is_alive() for t in load._threads):
                time.sleep(0.2)
        created = load.created_ids()
        deadline = time.monotonic() + 90
        while enrollment_ids(pg.url, unsent_only=True):
            assert time.monotonic() < deadline, "emails still unsent after 90 s"
            time.sleep(0.5)
    finally:
        worker.stop()
        smtp.stop()

    enrollments = enrollment_ids(pg.url)
    assert created <= enrollments and len(enrollments) == 60, (len(created), len(enrollments))
    ids = smtp.message_ids()
    domain = "eduflow.local"
    expected = {f"<eduflow.enrollment.{e}@{domain}>" for e in enrollments}
    assert set(ids) == expected  # every email carries its job's Message-ID, none is missing
    assert len(set(ids)) == len(enrollments)
    redelivery = []
    for held_id, restarted in interrupted:
        copies = smtp.stored_at(held_id)
        assert len(copies) == 2, (held_id, len(copies))  # the resend is the same message
        redelivery.append(copies[1] - restarted)
    assert max(redelivery) < REDELIVERY_BUDGET_S, redelivery
    duplicates = len(ids) - len(set(ids))
    print(
        f"worker SIGKILL x{len(interrupted)}: {len(ids)} emails stored for {len(enrollments)} "
        f"enrollments, {len(set(ids))} unique Message-IDs ({duplicates} resent copies, same "
        f"Message-ID); interrupted emails delivered again "
        f"{', '.join(f'{r:.1f}' for r in redelivery)} s after the worker's restart"
    )
