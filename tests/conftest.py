"""Test fixtures: real PostgreSQL (migrated once per run), real Redis, SMTP, API client, CLI.

Each test starts from empty tables (TRUNCATE) and an empty Redis database, so tests that
really run concurrent requests against PostgreSQL stay isolated from one another.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_DATABASE_URL = os.environ.get(
    "EDUFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/eduflow_test"
)
TEST_REDIS_URL = os.environ.get("EDUFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"
# Tests that start their own processes or restore settings read these names too.
os.environ.setdefault("EDUFLOW_TEST_DATABASE_URL", TEST_DATABASE_URL)
os.environ.setdefault("EDUFLOW_TEST_REDIS_URL", TEST_REDIS_URL)

# Settings are read lazily; set the environment before anything reads it.
os.environ.update(
    {
        "EDUFLOW_ENV": "test",
        "EDUFLOW_DATABASE_URL": TEST_DATABASE_URL,
        "EDUFLOW_REDIS_URL": TEST_REDIS_URL,
        "EDUFLOW_SECRET_KEY": TEST_SECRET,
        "EDUFLOW_BCRYPT_ROUNDS": "4",
        "EDUFLOW_LOG_LEVEL": "WARNING",
        # Rushes of hundreds of requests on a shared 2-core machine may queue for longer
        # than the production deadline; tests of the deadline set their own (tests/ops).
        "EDUFLOW_DB_REQUEST_DEADLINE": "30",
    }
)
os.environ.pop("EDUFLOW_SMTP_URL", None)
os.environ.pop("EDUFLOW_READ_DATABASE_URL", None)


def _ensure_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(url)
    admin = sa_url.set(database="postgres")
    dsn = admin.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (sa_url.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{sa_url.database}"')


def reset_process_state() -> None:
    """Forget cached settings, engines and store clients (after changing the environment)."""
    from eduflow.cache.health import reset_store
    from eduflow.config import reset_settings
    from eduflow.db import dispose_engines
    from eduflow.db_routing import replica

    reset_settings()
    dispose_engines()
    reset_store()
    replica.reset()


@pytest.fixture(scope="session", autouse=True)
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Create the test database, drop whatever an earlier run left, migrate to head once."""
    from sqlalchemy import text

    os.environ["EDUFLOW_MAIL_DIR"] = str(tmp_path_factory.mktemp("mail"))
    _ensure_database(TEST_DATABASE_URL)
    reset_process_state()
    from eduflow import schema
    from eduflow.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    schema.upgrade("head")
    yield TEST_DATABASE_URL
    reset_process_state()


def _table_names() -> list[str]:
    from sqlmodel import SQLModel

    import eduflow.models  # noqa: F401

    return [t.name for t in SQLModel.metadata.sorted_tables]


@pytest.fixture(autouse=True)
def no_refresh_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refresh-ahead off (an hour of quiet): its own requests to the application would
    otherwise join the routed requests and queries that tests count, whenever a loaded
    machine lets 2 s pass after a write. ``tests/api/test_refresh_ahead.py`` sets it."""
    monkeypatch.setattr("eduflow.api.refresh.QUIET", 3600.0)


@pytest.fixture(autouse=True)
def clean_state(migrated_database: str) -> Iterator[None]:
    """Empty tables and an empty Redis database before each test."""
    from sqlalchemy import text

    from eduflow.cache.health import reset_store
    from eduflow.cache.stores import get_redis
    from eduflow.config import reset_settings
    from eduflow.db import get_engine

    reset_settings()
    reset_store()
    from eduflow.outbox import flush_relay_marks

    flush_relay_marks()  # the previous test's batched outbox marks land before ids restart
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(_table_names())} RESTART IDENTITY CASCADE"))
    client = get_redis()
    assert client is not None, "tests need EDUFLOW_REDIS_URL"
    client.flushdb()
    yield


@pytest.fixture
def session() -> Iterator[Any]:
    """A session on the test database; committed at the end of the test body if used."""
    from eduflow.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def app() -> Any:
    """A fresh ASGI application."""
    from eduflow.api.app import create_app

    return create_app()


def assert_problem_response(response: Any) -> None:
    """Every error is problem+json whose ``request_id`` is the response's X-Request-ID."""
    if response.status_code < 400 or response.request.method == "HEAD":
        return
    response.read()
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/problem+json"), (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"with {content_type!r}: {response.text[:200]}"
    )
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["request_id"] and body["request_id"] == response.headers["x-request-id"], body


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """An HTTP client for the app (Starlette TestClient, lifespan included).

    Every error response it receives is checked against the problem-details contract.
    """
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver") as c:
        c.event_hooks["response"].append(assert_problem_response)
        yield c


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving the app in a background thread, for real concurrent HTTP requests."""

    def __init__(self) -> None:
        import uvicorn

        from eduflow.api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            limit_concurrency=2000,
            backlog=2048,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    """A real HTTP server on a loopback port."""
    with LiveServer() as server:
        yield server


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the parsed message."""
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    @property
    def url(self) -> str:
        """The ``EDUFLOW_SMTP_URL`` that reaches this server."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start listening."""
        self.controller.start()

    def stop(self) -> None:
        """Stop listening (simulates an SMTP outage)."""
        self.controller.stop()


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A running SMTP server, with EDUFLOW_SMTP_URL pointing at it."""
    sink = SmtpSink()
    sink.start()
    monkeypatch.setenv("EDUFLOW_SMTP_URL", sink.url)
    from eduflow.config import reset_settings

    reset_settings()
    try:
        yield sink
    finally:
        sink.stop()
        reset_settings()


@pytest.fixture
def login(client: Any) -> Any:
    """``login(username, password=DEFAULT_PASSWORD)`` -> Authorization headers, via the real API."""
    from tests.factories import DEFAULT_PASSWORD

    def _login(username: str, password: str = DEFAULT_PASSWORD) -> dict[str, str]:
        response = client.post(
            "/api/v1/auth/login/", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access']}"}

    return _login


@pytest.fixture
def cli() -> Any:
    """Invoke the ``eduflow`` command in-process: ``cli("admin", "users", "list")``."""
    from typer.testing import CliRunner

    from eduflow.cli import app as cli_app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(cli_app, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the process at a fresh SQLite file (embedded default) for the test."""
    url = f"sqlite:///{tmp_path / 'eduflow.db'}"
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", url)
    monkeypatch.delenv("EDUFLOW_REDIS_URL")
    reset_process_state()
    yield url
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", TEST_DATABASE_URL)
    monkeypatch.setenv("EDUFLOW_REDIS_URL", TEST_REDIS_URL)
    reset_process_state()
