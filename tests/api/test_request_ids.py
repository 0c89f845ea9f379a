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
