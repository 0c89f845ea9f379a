"""The idempotency-key store protocol, on Redis and on the in-process (embedded) store."""

from __future__ import annotations

import pytest

from eduflow.errors import BadRequest, Conflict, Invalid, Unavailable
from eduflow.services.idempotency import IdempotentRequest, StoredResponse, fingerprint
from tests.conftest import free_port, reset_process_state


def _protocol() -> None:
    first = IdempotentRequest(7, "POST /x/", "k1", b'{"a": 1, "b": 2}')
    assert first.begin() is None
    with pytest.raises(Conflict):
        IdempotentRequest(7, "POST /x/", "k1", b'{"b":2,"a":1}').begin()
    with pytest.raises(Invalid):
        IdempotentRequest(7, "POST /x/", "k1", b'{"a": 3}').begin()
    first.complete(StoredResponse(201, b'{"id": 1}', {"Location": "/x/1/"}))
    replay = IdempotentRequest(7, "POST /x/", "k1", b'{"a":1,"b":2}').begin()
    assert replay == StoredResponse(201, b'{"id": 1}', {"Location": "/x/1/"})
    assert IdempotentRequest(8, "POST /x/", "k1", b"{}").begin() is None  # another user
    failed = IdempotentRequest(7, "POST /x/", "k2", b"{}")
    assert failed.begin() is None
    failed.abort()
    assert IdempotentRequest(7, "POST /x/", "k2", b"{}").begin() is None


def test_protocol_on_redis() -> None:
    _protocol()


def test_protocol_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDUFLOW_REDIS_URL")
    reset_process_state()
    try:
        _protocol()
    finally:
        monkeypatch.undo()
        reset_process_state()


def test_redis_down_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/2")
    reset_process_state()
    with pytest.raises(Unavailable):
        IdempotentRequest(1, "POST /x/", "k", b"{}").begin()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(BadRequest):
        IdempotentRequest(1, "POST /x/", key, b"{}")


def test_fingerprint_ignores_json_layout_only() -> None:
    assert fingerprint(b'{"a":1,"b":[1,2]}') == fingerprint(b'{ "b": [1, 2], "a": 1 }')
    assert fingerprint(b'{"b":[2,1]}') != fingerprint(b'{"b":[1,2]}')
    assert fingerprint(b"not json") != fingerprint(b"not json!")
