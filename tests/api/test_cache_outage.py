"""Redis outages: reads and writes keep working from the database, one warning per outage,
counted in /metrics; when Redis answers again caching resumes by itself and nothing cached
before the outage hides a write made during it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from eduflow.models.users import Role
from tests.conftest import free_port, reset_process_state
from tests.factories import make_course, make_user

API = "/api/v1"


class PrivateRedis:
    """A redis-server of this test's own, on a free port, that can be paused and killed."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL (db 0: the whole server belongs to the test)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) it and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the outage tests"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung Redis)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill it (its data is gone)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


class CuttableLink:
    """A TCP proxy in front of a Redis: ``cut()`` drops every connection and refuses new
    ones (a network partition: Redis keeps its data, commands sent meanwhile are lost)."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The URL that reaches Redis through the link."""
        return f"redis://127.0.0.1:{self.port}/0"

    def restore(self) -> None:
        """Accept connections again."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every connection."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
            listener, self.listener = self.listener, None
        for sock in [*sockets, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def private_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    """Point the process at a Redis of the test's own for the duration of the test."""
    server = PrivateRedis(tmp_path)
    server.start()
    monkeypatch.setenv("EDUFLOW_REDIS_URL", server.url)
    reset_process_state()
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.setenv("EDUFLOW_REDIS_URL", os.environ["EDUFLOW_TEST_REDIS_URL"])
        reset_process_state()


@pytest.fixture
def course(session: Any) -> int:
    """A published course of grace's; ada is a student."""
    grace = make_user(session, Role.instructor, username="grace")
    make_user(session, Role.student, username="ada")
    course = make_course(session, grace, title="Before the outage")
    session.commit()
    assert course.id is not None
    return course.id


def _cache_figure(client: Any, name: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith(name + "_created"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_hung_redis_is_bypassed_then_caching_resumes_without_stale_data(
    private_redis: PrivateRedis, client: Any, login: Any, course: int
) -> None:
    from eduflow.cache.health import health

    grace, ada = login("grace"), login("ada")
    detail, listing = f"{API}/courses/{course}/", f"{API}/courses/"
    for url in (detail, listing):
        client.get(url)
        assert client.get(url).headers["x-cache"] == "hit"
    outages = _cache_figure(client, "eduflow_cache_outages_total")
    errors = _cache_figure(client, "eduflow_cache_errors_total")

    private_redis.pause()
    with capture_logs() as logs:
        for title in ("During the outage", "Still during it"):
            changed = client.patch(detail, json={"title": title}, headers=grace)
            assert changed.status_code == 200, changed.text
            for headers in ({}, ada):
                shown = client.get(detail, headers=headers)
                assert shown.status_code == 200 and shown.json()["title"] == title
                assert shown.headers["x-cache"] == "miss"
                assert client.get(listing, headers=headers).json()["results"][0]["title"] == title
        created = client.post(
            f"{API}/courses/", json={"title": "Made while Redis hung"}, headers=grace
        )
        assert created.status_code == 201, created.text
    warnings = [e for e in logs if e["event"] == "cache_unavailable"]
    assert len(warnings) == 1, logs
    assert _cache_figure(client, "eduflow_cache_outages_total") == outages + 1
    assert _cache_figure(client, "eduflow_cache_errors_total") > errors

    private_redis.resume()
    _wait_until(lambda: health.healthy)
    for headers in ({}, ada):
        assert client.get(detail, headers=headers).json()["title"] == "Still during it"
    assert client.get(detail).headers["x-cache"] == "hit"
    assert client.get(listing).json()["results"][0]["title"] == "Still during it"
    assert client.get(listing).headers["x-cache"] == "hit"


def test_writes_during_a_partition_are_not_hidden_by_entries_cached_before_it(
    private_redis: PrivateRedis,
    client: Any,
    login: Any,
    course: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis keeps its (now stale) entries while unreachable; the invalidations of writes
    made meanwhile are lost. After the partition nothing cached before it is served."""
    from eduflow.cache.health import health

    link = CuttableLink(private_redis.port)
    link.restore()
    monkeypatch.setenv("EDUFLOW_REDIS_URL", link.url)
    reset_process_state()
    try:
        grace = login("grace")
        detail, listing = f"{API}/courses/{course}/", f"{API}/courses/"
        for url in (detail, listing):
            client.get(url)
            assert client.get(url).headers["x-cache"] == "hit"
        link.cut()
        changed = client.patch(detail, json={"title": "Changed while cut off"}, headers=grace)
        assert changed.status_code == 200, changed.text
        assert client.get(detail).json()["title"] == "Changed while cut off"
        assert not health.healthy
        link.restore()
        _wait_until(lambda: health.healthy)
        for url in (detail, listing):
            shown = client.get(url).json()
            title = shown["title"] if url == detail else shown["results"][0]["title"]
            assert title == "Changed while cut off", url
        assert client.get(detail).headers["x-cache"] == "hit"
    finally:
        link.cut()


def test_a_stopped_redis_is_bypassed_and_a_restarted_one_is_used_again(
    private_redis: PrivateRedis, client: Any, login: Any, course: int
) -> None:
    from eduflow.cache.health import health

    grace = login("grace")
    detail = f"{API}/courses/{course}/"
    client.get(detail)
    private_redis.stop()
    with capture_logs() as logs:
        for i in range(5):
            assert client.get(detail).status_code == 200
            renamed = client.patch(detail, json={"title": f"Title {i}"}, headers=grace)
            assert renamed.status_code == 200, renamed.text
            assert client.get(detail).json()["title"] == f"Title {i}"
    assert len([e for e in logs if e["event"] == "cache_unavailable"]) == 1

    private_redis.start()
    _wait_until(lambda: health.healthy)
    assert client.get(detail).json()["title"] == "Title 4"
    hit = client.get(detail)
    assert hit.headers["x-cache"] == "hit" and hit.json()["title"] == "Title 4"


def test_a_frozen_redis_costs_its_timeout_once_then_fails_fast_until_it_answers(
    private_redis: PrivateRedis,
) -> None:
    from eduflow.cache.outage import outage
    from eduflow.cache.stores import REDIS_TIMEOUT, StoreUnavailable, get_store

    store = get_store()
    store.set("eduflow:drill", b"1")
    private_redis.pause()
    try:
        durations = []
        for _ in range(20):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.get("eduflow:drill")
            durations.append(time.monotonic() - started)
        assert outage.down
    finally:
        private_redis.resume()
    # The first call waits for the timeout (once: no retries), the others fail at once.
    assert REDIS_TIMEOUT * 0.9 <= durations[0] < REDIS_TIMEOUT * 2 + 0.2, durations[0]
    assert max(durations[1:]) < 0.05, durations
    # The background probe notices Redis is back; no caller waited for it.
    _wait_until(lambda: not outage.down, timeout=5.0)
    assert store.get("eduflow:drill") == b"1"
