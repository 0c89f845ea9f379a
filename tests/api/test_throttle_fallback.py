"""Throttles: registration per client address (behind the trusted proxy too), and a
per-process limiter while Redis is down instead of no limit at all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import make_user

API = "/api/v1"


def _register(client: Any, n: int, **headers: str) -> Any:
    body = {
        "username": f"newbie{n}",
        "email": f"newbie{n}@example.com",
        "password": "a-good-pass-1",
    }
    return client.post(f"{API}/auth/register/", json=body, headers=headers)


def test_registration_is_throttled_per_client_address(client: Any, monkeypatch: Any) -> None:
    from tests.jobs.conftest import set_env

    set_env(monkeypatch, register_max_per_ip="3")
    for n in range(3):
        assert _register(client, n).status_code == 201
    blocked = _register(client, 3)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= 3600
    assert blocked.headers["content-type"].startswith("application/problem+json")


def test_behind_the_trusted_proxy_each_forwarded_address_has_its_own_allowance(
    monkeypatch: Any,
) -> None:
    from tests.conftest import LiveServer
    from tests.jobs.conftest import set_env

    set_env(monkeypatch, register_max_per_ip="2")
    with LiveServer() as server, httpx.Client(base_url=server.url) as http:
        # The live server trusts X-Forwarded-For from loopback (uvicorn's proxy headers).
        a = {"X-Forwarded-For": "203.0.113.1"}
        b = {"X-Forwarded-For": "203.0.113.2"}
        assert _register(http, 10, **a).status_code == 201
        assert _register(http, 11, **a).status_code == 201
        assert _register(http, 12, **a).status_code == 429
        assert _register(http, 13, **b).status_code == 201


@pytest.fixture
def redis_down(monkeypatch: Any) -> None:
    """Point the API at a Redis port where nothing listens."""
    from tests.conftest import free_port, reset_process_state

    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()


def test_failed_logins_are_still_throttled_while_redis_is_down(
    session: Any, redis_down: None
) -> None:
    from fastapi.testclient import TestClient

    from eduflow.api.app import create_app
    from eduflow.config import get_settings

    make_user(session, username="target")
    session.commit()
    limit = get_settings().login_max_failures
    with TestClient(create_app()) as client:
        statuses = [
            client.post(
                f"{API}/auth/login/", json={"username": "target", "password": f"wrong-{i}"}
            ).status_code
            for i in range(limit + 7)
        ]
        assert statuses[:limit] == [401] * limit
        assert set(statuses[limit:]) == {429}, statuses
        last = client.post(f"{API}/auth/login/", json={"username": "target", "password": "x"})
        assert int(last.headers["retry-after"]) > 0


def test_the_process_limiter_counts_what_the_shared_one_would(redis_down: None) -> None:
    """Unit check of the fallback: same Limit, same answers, from the in-process store."""
    from eduflow.errors import Throttled
    from eduflow.services import throttle

    limit = throttle.Limit("test.kind", "subject", 2, 60)
    throttle.hit((limit,), "slow down")
    throttle.hit((limit,), "slow down")
    with pytest.raises(Throttled) as caught:
        throttle.hit((limit,), "slow down")
    assert 0 < caught.value.retry_after <= 60
