"""``eduflow worker --check`` / ``eduflow scheduler --check`` (the containers' healthchecks):
healthy while a process of this host beats in Redis, unhealthy once it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.jobs.conftest import spawn_worker, wait_for


def _check(role: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eduflow.cli.__main__", role, "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_unhealthy_without_a_live_process(cli: Any, role: str) -> None:
    result = cli(role, "--check")
    assert result.exit_code == 1
    assert f"no live {role} on this host" in result.output


def test_a_running_worker_is_healthy_and_serves_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("EDUFLOW_METRICS_PORT", str(port))
    worker = spawn_worker()
    try:
        wait_for(lambda: _check("worker").returncode == 0, timeout=30, what="a healthy worker")
        assert "worker alive:" in _check("worker").stdout
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "eduflow_jobs_failed 0.0" in metrics and "eduflow_redis_up 1.0" in metrics
    finally:
        _stop(worker)
    assert _check("worker").returncode == 1  # a stopped worker leaves the registry


def test_a_running_scheduler_is_healthy() -> None:
    env = {**os.environ, "EDUFLOW_LOG_LEVEL": "INFO"}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "eduflow.cli.__main__", "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: _check("scheduler").returncode == 0, timeout=30, what="a healthy scheduler"
        )
    finally:
        _stop(scheduler)
    assert _check("scheduler").returncode == 1
