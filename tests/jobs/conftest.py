"""Helpers for job tests: workers in-process or as real `eduflow worker` processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import SmtpSink


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Set EDUFLOW_* settings for this process (and the worker processes it starts)."""
    from eduflow.config import reset_settings

    for name, value in values.items():
        monkeypatch.setenv(f"EDUFLOW_{name.upper()}", value)
    reset_settings()


def work_burst(queues: tuple[str, ...] = ("default",)) -> None:
    """Run an in-process worker until the queues are empty."""
    from eduflow.jobs.worker import EduFlowWorker, worker_connection

    EduFlowWorker(list(queues), connection=worker_connection()).work(
        burst=True, with_scheduler=True, logging_level="WARNING"
    )


def worker_command(*args: str) -> list[str]:
    """The `eduflow worker …` command line for a subprocess."""
    return [sys.executable, "-m", "eduflow.cli.__main__", "worker", *args]


def spawn_worker(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """A real worker process on the test databases (the environment is inherited)."""
    env = {**os.environ, "EDUFLOW_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        worker_command(*args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Poll ``predicate`` until true (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class SlowSmtpSink(SmtpSink):
    """An SMTP server whose first ``slow`` RCPT commands hang for ``delay`` seconds."""

    def __init__(self, slow: int = 1, delay: float = 5.0) -> None:
        super().__init__()
        self.slow = slow
        self.delay = delay
        self.rcpt_seen = threading.Event()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Hold the first recipients (a send in progress), then accept."""
        self.rcpt_seen.set()
        if self.slow > 0:
            self.slow -= 1
            await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def slow_smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowSmtpSink]:
    """A running slow SMTP server with EDUFLOW_SMTP_URL pointing at it."""
    sink = SlowSmtpSink()
    sink.start()
    set_env(monkeypatch, smtp_url=sink.url)
    try:
        yield sink
    finally:
        sink.stop()


def recipients(sink: SmtpSink) -> list[str]:
    """The To: address of every message the sink received."""
    return [str(m["To"]) for m in sink.messages]


@pytest.fixture(autouse=True)
def _closed_relay_breaker() -> None:
    """Each test starts with the after-commit relay enabled (an earlier outage may have
    opened the breaker for a few seconds)."""
    from eduflow.outbox import relay as outbox

    outbox._breaker_until = 0.0
