"""A deleted account's token is refused on the next request by every API process, cached
paths included: two real `eduflow serve` processes with warm near caches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.factories import DEFAULT_PASSWORD, make_course, make_user

API = "/api/v1"


@pytest.fixture
def two_servers() -> Iterator[list[str]]:
    procs, urls = [], []
    env = {**os.environ, "EDUFLOW_LOG_LEVEL": "WARNING"}
    for _ in range(2):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "eduflow.cli.__main__", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("servers did not start")
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_every_process_refuses_the_deleted_users_token_at_once(
    session: Any, cli: Any, two_servers: list[str]
) -> None:
    make_user(session, username="goner")
    course = make_course(session)
    session.commit()
    login = httpx.post(
        f"{two_servers[0]}{API}/auth/login/",
        json={"username": "goner", "password": DEFAULT_PASSWORD},
    )
    headers = {"Authorization": f"Bearer {login.json()['access']}"}
    paths = [f"{API}/auth/me/", f"{API}/courses/", f"{API}/courses/{course.id}/"]
    for url in two_servers:  # warm each process's near cache with this token
        for path in paths:
            for _ in range(3):
                assert httpx.get(f"{url}{path}", headers=headers).status_code == 200
        assert httpx.get(f"{url}{API}/courses/", headers=headers).headers["x-cache"] == "hit"

    assert cli("admin", "users", "delete", "goner", "--yes").exit_code == 0
    for url in two_servers:
        for path in paths:
            assert httpx.get(f"{url}{path}", headers=headers).status_code == 401, (url, path)
        enroll = httpx.post(f"{url}{API}/enrollments/", json={"course": course.id}, headers=headers)
        assert enroll.status_code == 401, enroll.text
