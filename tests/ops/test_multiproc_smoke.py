"""The production shape without Docker: scripts/multiproc.py (3 API processes, 2 workers and
a scheduler on PostgreSQL + Redis) passes scripts/smoke.py end to end, then stops cleanly."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ops.stack import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> Any:
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"eduflow_scripts_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readyz_requests(exposition: str) -> float:
    """Sum of ``eduflow_http_requests_total`` samples of the /readyz route."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if (
                sample.name == "eduflow_http_requests_total"
                and sample.labels.get("route") == "/readyz"
            ):
                total += sample.value
    return total


class Multiproc:
    """scripts/multiproc.py in a child process, its stdout collected line by line."""

    def __init__(self, env: dict[str, str], log_dir: Path, port: int) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "multiproc.py"), "--port", str(port),
             "--log-dir", str(log_dir)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.popen.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"no {prefix!r} line; output: {self.lines[-20:]}")

    def stop(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def test_three_api_processes_two_workers_end_to_end(
    tmp_path: Path, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test database and Redis db of this run (emptied before the test), real SMTP.
    env = dict(os.environ)
    env.update({"EDUFLOW_LOG_LEVEL": "INFO", "EDUFLOW_SMTP_URL": smtp_server.url,
                "EDUFLOW_OUTBOX_SWEEP_INTERVAL": "1"})  # fmt: skip
    for key, value in env.items():
        if key.startswith("EDUFLOW_"):
            monkeypatch.setenv(key, value)  # the smoke's CLI calls inherit them
    port = free_port()
    log_dir = tmp_path / "logs"
    stack = Multiproc(env, log_dir, port)
    try:
        ready = stack.wait_for("READY", timeout=120)
        assert "api=" in ready and "worker-2=" in ready and "scheduler=" in ready

        smoke = load_script("smoke")
        status = smoke.main(
            ["--base-url", f"http://127.0.0.1:{port}", "--api-log", str(log_dir / "api.log"),
             "--api-processes", "3", "--mail-timeout", "60"]
        )  # fmt: skip
        assert status == 0, (log_dir / "api.log").read_text()[-3000:]

        # Emails delivered over real SMTP, exactly once each, to the smoke's student: the
        # verification link of the registration and the enrollment's confirmation.
        received = [(str(m["To"]), str(m["Subject"])) for m in smtp_server.messages]
        students = sorted(s for to, s in received if "smoke_student_" in to)
        assert len(students) == 2, received
        assert students[0] == "Confirm your email address for EduFlow", received
        assert students[1].startswith("You are enrolled in"), received

        # /metrics adds up every API process, whichever one answers.
        base = f"http://127.0.0.1:{port}"
        for _ in range(30):
            assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        totals = {readyz_requests(httpx.get(base + "/metrics", timeout=10).text) for _ in range(6)}
        assert len(totals) == 1 and totals.pop() >= 31, totals
        # Scrape-time gauges (read from PostgreSQL/Redis) are there too.
        assert "eduflow_outbox_backlog 0.0" in httpx.get(base + "/metrics", timeout=10).text
    finally:
        code = stack.stop()
    # SIGTERM: every process stopped gracefully.
    assert code == 0, stack.lines[-20:]
    assert stack.lines[-1] == "STOPPED"
    api_log = (log_dir / "api.log").read_text()
    assert "Traceback" not in api_log
