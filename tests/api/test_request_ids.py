"""Request ids made per process (UUID4 format, unique) and the directly written access line."""

from __future__ import annotations

import json
import uuid
from typing import Any


def test_new_request_ids_are_distinct_uuid4s(client: Any) -> None:
    ids = [client.get("/healthz").headers["x-request-id"] for _ in range(5)]
    assert len(set(ids)) == 5
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == rid
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"


def test_the_access_line_has_the_fields_of_the_contract(capsys: Any) -> None:
    import structlog

    from eduflow.logging import configure_logging, write_access_line

    configure_logging(level="INFO", fmt="json")
    structlog.contextvars.bind_contextvars(request_id="rid-1")
    try:
        capsys.readouterr()
        write_access_line("GET", "/api/v1/x/eyJhbGciOi.eyJzdWIi.c2ln/", 200, 1.5, 7)
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["logger"] == "eduflow.access" and line["event"] == "request"
    assert line["level"] == "info" and line["request_id"] == "rid-1"
    assert (line["method"], line["status"], line["duration_ms"], line["user_id"]) == (
        "GET",
        200,
        1.5,
        7,
    )
    assert "eyJ" not in line["path"]  # a token in a path is redacted as before
    assert line["timestamp"].endswith("Z") and isinstance(line["pid"], int)


def test_the_access_line_names_the_client_address_and_user_agent(capsys: Any) -> None:
    import structlog

    from eduflow.logging import configure_logging, write_access_line

    configure_logging(level="INFO", fmt="json")
    agent = 'curl/8.5 "quoted" ' + "x" * 400
    try:
        capsys.readouterr()
        structlog.contextvars.bind_contextvars(request_id="rid-2")
        write_access_line("GET", "/healthz", 200, 0.4, None, client="203.0.113.9", user_agent=agent)
        structlog.contextvars.bind_contextvars(job_id="j")  # the general form of the line
        write_access_line("GET", "/healthz", 200, 0.4, None, client="203.0.113.9", user_agent=agent)
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging()
    lines = [json.loads(x) for x in capsys.readouterr().err.strip().splitlines()[-2:]]
    for line in lines:
        assert line["client"] == "203.0.113.9"
        assert line["user_agent"] == agent[:256]
    # A token smuggled into the header is redacted like anywhere else in a log line.
    capsys.readouterr()
    configure_logging(level="INFO", fmt="json")
    try:
        token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        write_access_line("GET", "/", 200, 0.1, None, "rid-3", user_agent=f"x Bearer {token}")
    finally:
        configure_logging()
    assert "eyJ" not in capsys.readouterr().err


def test_behind_a_trusted_proxy_the_forwarded_address_is_logged(
    capfd: Any, monkeypatch: Any
) -> None:
    """uvicorn resolves X-Forwarded-For of a trusted proxy (as ``eduflow serve`` runs it);
    the access lines of routed requests and cache hits show the result."""
    import threading
    import time

    import httpx
    import uvicorn

    from eduflow.api.app import create_served_app
    from eduflow.config import reset_settings
    from eduflow.logging import configure_logging
    from tests.conftest import free_port

    monkeypatch.setenv("EDUFLOW_LOG_LEVEL", "INFO")
    reset_settings()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_served_app(),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        headers = {"X-Forwarded-For": "198.51.100.7", "User-Agent": "eduflow-test/1"}
        for path in ("/healthz", "/api/v1/courses/", "/api/v1/courses/"):  # miss, then hit
            assert httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        monkeypatch.undo()
        reset_settings()
        configure_logging()
    access = [
        json.loads(x)
        for x in capfd.readouterr().err.splitlines()
        if x.startswith("{") and '"eduflow.access"' in x
    ]
    assert [a["path"] for a in access].count("/api/v1/courses/") == 2
    for line in access:
        assert line["client"] == "198.51.100.7" and line["user_agent"] == "eduflow-test/1"
