"""schemathesis ``--checks all`` over every operation of the OpenAPI document, all phases
(examples, coverage, fuzzing and the stateful phase that follows links), against a live
server on loopback backed by the real PostgreSQL and Redis.

The run is seeded (reproducible in CI) and bounded (``--max-examples``). Who authenticates
for which operation, and the one case left out, are in ``tests/api/schemathesis_hooks.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.conftest import LiveServer, reset_process_state
from tests.factories import make_certificate, make_course, make_enrollment, make_lesson, make_user

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "patch", "delete"}
SEED = 20261202
MAX_EXAMPLES = 8
# Rate limits stay in force, set high enough that the run exercises the routes behind them.
SERVER_ENV = {
    "EDUFLOW_ACCESS_TOKEN_TTL": "3600",
    "EDUFLOW_REGISTER_MAX_PER_IP": "100000",
    "EDUFLOW_LOGIN_MAX_FAILURES": "100000",
    "EDUFLOW_LOGIN_MAX_FAILURES_PER_IP": "100000",
    "EDUFLOW_PASSWORD_RESET_MAX_PER_EMAIL": "100000",
    "EDUFLOW_PASSWORD_RESET_MAX_PER_IP": "100000",
}


def _seed(session: Any) -> dict[str, Any]:
    """Three actors and a little of everything for generated ids (1, 2, 3...) to find."""
    admin = make_user(session, Role.admin, username="st_admin")
    instructor = make_user(session, Role.instructor, username="st_instructor")
    student = make_user(session, Role.student, username="st_student")
    other = make_user(session, Role.student, username="st_other")
    free = make_course(session, owner=instructor, capacity=5)
    paid = make_course(session, owner=instructor, price="12.50", capacity=5)
    full = make_course(session, owner=instructor, capacity=1)
    # Open courses up to id 12 and lessons up to id 40: the ids of the document's examples,
    # so the examples phase reaches the success paths too (enroll in course 12, ...).
    courses = [free, paid, full, *(make_course(session, owner=instructor) for _ in range(9))]
    for i in range(40):
        make_lesson(session, courses[min(i, len(courses) - 1)])
    make_enrollment(session, student, free)
    make_enrollment(session, student, paid, status="pending")
    make_enrollment(session, other, full)
    make_certificate(session, student, free)
    actors = {
        name: {"id": user.id, "token": issue_tokens(session, user).access}
        for name, user in (("admin", admin), ("instructor", instructor), ("student", student))
    }
    session.commit()
    return actors


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    with LiveServer() as live:
        yield live
    reset_process_state()


@pytest.mark.timeout(240)
def test_every_operation_passes_every_check(server: Any, session: Any, tmp_path: Path) -> None:
    actors = _seed(session)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
        "EDUFLOW_SCHEMATHESIS_ACTORS": json.dumps(actors),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file=tests/api/schemathesis.toml",
        "run",
        f"{server.url}/api/schema/",
        "--checks=all",
        f"--seed={SEED}",
        f"--max-examples={MAX_EXAMPLES}",
        "--workers=1",
        "--request-timeout=30",
        f"--report-dir={tmp_path}",
        "--report=ndjson",
    ]
    started, cpu = time.monotonic(), _cpu_seconds()
    run = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=220, check=False
    )
    elapsed, cpu = time.monotonic() - started, _cpu_seconds() - cpu
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert run.returncode == 0, f"full output in {tmp_path}/schemathesis.txt\n{output[-20000:]}"
    # Every operation of the document, in all four phases.
    with urllib.request.urlopen(f"{server.url}/api/schema/", timeout=10) as response:
        paths = json.load(response)["paths"]
    operations = sum(1 for item in paths.values() for m in item if m in METHODS)
    assert f"Selected: {operations}/{operations}" in output and f"Tested: {operations}" in output
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, phase
    print(f"schemathesis --checks all: {elapsed:.1f} s, {cpu:.1f} s CPU\n{output[-3000:]}")


def _cpu_seconds() -> float:
    """CPU time of this process (the server) and its children (schemathesis) so far."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
