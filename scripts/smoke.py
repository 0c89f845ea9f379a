#!/usr/bin/env python3
"""End-to-end smoke test of a running EduFlow (e.g. started by scripts/multiproc.py).

Against BASE_URL, as a client would, plus the operator CLI (same EDUFLOW_* environment):

1. an instructor is created with ``eduflow admin users create --password-stdin``;
2. a student registers and both log in (and the student refreshes its tokens);
3. the instructor creates a draft course, then publishes it;
4. the student enrolls (with an Idempotency-Key, sent twice: one enrollment);
5. the confirmation email is delivered (an ``.eml`` file under --mail-dir, or checked by
   the caller when EDUFLOW_SMTP_URL is set);
6. ``eduflow jobs stats --json`` counts the finished email job;
7. with --api-log, a burst of requests shows that every API process served some
   (access-log lines carry ``request_id`` and ``pid``).

Prints one line per step and exits non-zero on the first failure.

    .venv/bin/python scripts/smoke.py --base-url http://127.0.0.1:8000 \\
        --mail-dir ./mail --api-log /tmp/eduflow-logs/api.log --api-processes 3
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"
PASSWORD = "smoke-Passw0rd-" + secrets.token_hex(4)


class SmokeFailure(AssertionError):
    """A step did not behave as the contract says."""


def step(message: str) -> None:
    """Report progress on stdout."""
    print(f"ok  {message}", flush=True)


def expect(response: httpx.Response, status: int, what: str) -> Any:
    """The JSON body of ``response`` when its status is ``status``; a SmokeFailure otherwise."""
    if response.status_code != status:
        raise SmokeFailure(
            f"{what}: expected {status}, got {response.status_code}: {response.text}"
        )
    return response.json() if response.content else None


def eduflow(*args: str, input: str | None = None) -> str:
    """Run an ``eduflow`` command with this process's environment; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "eduflow.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    if result.returncode != 0:
        raise SmokeFailure(f"eduflow {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class Smoke:
    """The scenario, keeping the request ids it sent."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=30)
        self.request_ids: set[str] = set()
        self.suffix = secrets.token_hex(4)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with a fresh X-Request-ID."""
        request_id = str(uuid.uuid4())
        self.request_ids.add(request_id)
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def login(self, username: str) -> dict[str, str]:
        """Bearer headers for ``username``."""
        body = expect(
            self.call(
                "POST", f"{API}/auth/login/", json={"username": username, "password": PASSWORD}
            ),
            200,
            f"login {username}",
        )
        return {"Authorization": f"Bearer {body['access']}"}

    def run(self, mail_dir: Path | None, mail_timeout: float) -> dict[str, Any]:
        """The whole scenario; returns what it created."""
        instructor = f"smoke_teacher_{self.suffix}"
        student = f"smoke_student_{self.suffix}"
        student_email = f"{student}@example.com"

        eduflow(
            "admin", "users", "create", "--username", instructor,
            "--email", f"{instructor}@example.com", "--role", "instructor", "--password-stdin",
            input=PASSWORD + "\n",
        )  # fmt: skip
        step(f"instructor {instructor} created with the CLI")

        expect(
            self.call(
                "POST",
                f"{API}/auth/register/",
                json={"username": student, "email": student_email, "password": PASSWORD},
            ),
            201,
            "register",
        )
        teacher_auth = self.login(instructor)
        student_auth = self.login(student)
        me = expect(self.call("GET", f"{API}/auth/me/", headers=student_auth), 200, "me")
        if me["role"] != "student":
            raise SmokeFailure(f"a registered user must be a student, got {me['role']}")
        step(f"student {student} registered; both logged in")

        course = expect(
            self.call(
                "POST",
                f"{API}/courses/",
                headers=teacher_auth,
                json={"title": f"Smoke course {self.suffix}", "price": "0", "is_published": False},
            ),
            201,
            "create course",
        )
        expect(self.call("GET", f"{API}/courses/{course['id']}/", headers=student_auth), 404,
               "a draft is invisible to students")  # fmt: skip
        published = expect(
            self.call(
                "PATCH",
                f"{API}/courses/{course['id']}/",
                headers=teacher_auth,
                json={"is_published": True},
            ),
            200,
            "publish course",
        )
        if not published["is_published"]:
            raise SmokeFailure("the course is not published")
        seen = expect(
            self.call("GET", f"{API}/courses/{course['id']}/", headers=student_auth), 200, "read"
        )
        step(f"course {seen['id']} created as a draft, published, visible to the student")

        key = {"Idempotency-Key": f"smoke-{self.suffix}"}
        first = self.call(
            "POST",
            f"{API}/enrollments/",
            headers={**student_auth, **key},
            json={"course": course["id"]},
        )
        enrollment = expect(first, 201, "enroll")
        replay = self.call(
            "POST",
            f"{API}/enrollments/",
            headers={**student_auth, **key},
            json={"course": course["id"]},
        )
        if replay.status_code != 201 or replay.json() != enrollment:
            raise SmokeFailure(f"an idempotent retry must replay the first answer: {replay.text}")
        if enrollment["status"] != "active":
            raise SmokeFailure(f"a free course gives an active enrollment: {enrollment}")
        mine = expect(self.call("GET", f"{API}/enrollments/", headers=student_auth), 200, "list")
        if mine["count"] != 1:
            raise SmokeFailure(f"one enrollment expected, found {mine['count']}")
        step(f"enrollment {enrollment['id']} active (idempotent retry replayed)")

        if mail_dir is not None:
            wait_for_mail(mail_dir, student_email, mail_timeout)
            step(f"confirmation email for {student_email} written under {mail_dir}")
        return {
            "student": student,
            "student_email": student_email,
            "instructor": instructor,
            "course_id": course["id"],
            "enrollment_id": enrollment["id"],
            "student_auth": student_auth,
        }

    def burst(self, path: str, headers: dict[str, str], count: int) -> None:
        """``count`` concurrent GETs, each on a new connection (spread over the processes)."""

        def one(_: int) -> int:
            request_id = str(uuid.uuid4())
            self.request_ids.add(request_id)
            with httpx.Client(base_url=self.client.base_url, timeout=30) as fresh:
                return fresh.get(path, headers={**headers, "X-Request-ID": request_id}).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one, range(count)))
        if set(statuses) != {200}:
            raise SmokeFailure(f"burst on {path}: statuses {sorted(set(statuses))}")


def wait_for_mail(mail_dir: Path, address: str, timeout: float) -> Path:
    """The ``.eml`` file addressed to ``address``, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in mail_dir.rglob("*.eml"):
            if address in path.read_text(errors="replace"):
                return path
        time.sleep(0.3)
    raise SmokeFailure(f"no email to {address} under {mail_dir} after {timeout:.0f} s")


def finished_jobs(stats: Any) -> int:
    """How many jobs ``eduflow jobs stats --json`` counts as finished (all queues)."""
    if isinstance(stats, dict):
        total = 0
        for key, value in stats.items():
            if key == "finished" and isinstance(value, int):
                total += value
            elif isinstance(value, dict | list):
                total += finished_jobs(value)
        return total
    if isinstance(stats, list):
        return sum(finished_jobs(item) for item in stats)
    return 0


def finished_email_jobs() -> int:
    """How many ``send_enrollment_email`` jobs ``eduflow jobs list`` shows as finished."""
    listing = json.loads(eduflow("jobs", "list", "--status", "finished", "--json"))
    rows = listing.get("results", []) if isinstance(listing, dict) else listing
    return sum(1 for row in rows if row.get("function") == "send_enrollment_email")


def wait_for_finished_jobs(minimum: int, timeout: float) -> Any:
    """``eduflow jobs stats --json`` once it counts ``minimum`` finished jobs, email included."""
    deadline = time.monotonic() + timeout
    while True:
        stats = json.loads(eduflow("jobs", "stats", "--json"))
        if finished_jobs(stats) >= minimum and finished_email_jobs() >= 1:
            return stats
        if time.monotonic() > deadline:
            raise SmokeFailure(f"jobs stats show no finished job: {stats}")
        time.sleep(0.5)


def pids_serving(api_log: Path, request_ids: set[str]) -> set[int]:
    """PIDs of the API processes whose log lines carry one of ``request_ids``."""
    pids: set[int] = set()
    for line in api_log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("request_id") in request_ids and isinstance(record.get("pid"), int):
            pids.add(record["pid"])
    return pids


def check_spread(smoke: Smoke, api_log: Path, processes: int, auth: dict[str, str]) -> set[int]:
    """Send bursts until every API process has served requests of this run."""
    pids: set[int] = set()
    for _ in range(10):
        smoke.burst(f"{API}/courses/", auth, 40)
        time.sleep(0.3)  # let the processes flush their log lines
        pids = pids_serving(api_log, smoke.request_ids)
        if len(pids) >= processes:
            return pids
    raise SmokeFailure(f"only {len(pids)} of {processes} API processes served requests: {pids}")


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the scenario, report."""
    parser = argparse.ArgumentParser(description="End-to-end smoke test of a running EduFlow.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--mail-dir", type=Path, help="where .eml files appear (no SMTP)")
    parser.add_argument("--mail-timeout", type=float, default=60)
    parser.add_argument("--api-log", type=Path, help="the API processes' JSON log file")
    parser.add_argument("--api-processes", type=int, default=3)
    opts = parser.parse_args(argv)

    smoke = Smoke(opts.base_url)
    try:
        created = smoke.run(opts.mail_dir, opts.mail_timeout)
        stats = wait_for_finished_jobs(1, opts.mail_timeout)
        step(f"jobs stats count {finished_jobs(stats)} finished job(s)")
        if opts.api_log is not None:
            pids = check_spread(smoke, opts.api_log, opts.api_processes, created["student_auth"])
            step(f"requests served by {len(pids)} API processes: {sorted(pids)}")
    except (SmokeFailure, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        print(f"FAIL {exc}", file=sys.stderr, flush=True)
        return 1
    print("SMOKE PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
