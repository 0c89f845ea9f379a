"""Typer conventions of the command line: choices in help and completion, settings-backed
options with ``envvar=``, help text that renders whole, usage errors that exit 2 in one
line, a password prompt without a terminal, a quiet and Host-independent ``cache warm``,
and ``make run PORT=…``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from eduflow.models.users import Role
from tests.conftest import free_port
from tests.factories import make_course, make_lesson, make_user

ROOT = Path(__file__).resolve().parents[2]
CHOICES = [
    (("admin", "users", "list", "--role"), ["student", "instructor", "admin"]),
    (("admin", "enrollments", "list", "--status"), ["pending", "active", "expired"]),
    (
        ("admin", "waitlist", "list", "--course", "1", "--status"),
        ["waiting", "offered", "accepted", "declined", "expired", "left"],
    ),
    (("jobs", "list", "--status"), ["queued", "started", "failed", "scheduled", "finished"]),
    (("jobs", "purge", "--status"), ["failed", "finished"]),
]


def _eduflow(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eduflow.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def _line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


# --------------------------------------------------------------------------- choices


@pytest.mark.parametrize(("words", "values"), CHOICES, ids=lambda v: " ".join(v))
def test_choices_are_completed_by_the_shell(words: tuple[str, ...], values: list[str]) -> None:
    env = {**os.environ, "_EDUFLOW_COMPLETE": "complete_bash"}
    env |= {"COMP_WORDS": " ".join(("eduflow", *words, "")), "COMP_CWORD": str(len(words) + 1)}
    result = _eduflow(env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == values


@pytest.mark.parametrize(("words", "values"), CHOICES, ids=lambda v: " ".join(v))
def test_choices_are_listed_in_help_and_a_bad_one_is_a_usage_error(
    cli: Any, monkeypatch: pytest.MonkeyPatch, words: tuple[str, ...], values: list[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # help lines unwrapped
    command = tuple(w for w in words[:-1] if not w.startswith("-") and not w.isdigit())
    help_text = cli(*command, "--help").stdout
    assert "|".join(values) in help_text
    result = cli(*words, "bogus")
    assert result.exit_code == 2
    quoted = ", ".join(f"'{v}'" for v in values)
    option = "'--status' / '-s'" if command == ("jobs", "list") else f"'{words[-1]}'"
    assert _line(result) == (
        f"Error: Invalid value for {option}: 'bogus' is not one of {quoted}. "
        f"(see `eduflow {' '.join(command)} --help`)"
    )


def test_choices_ignore_case(cli: Any) -> None:
    result = cli("admin", "users", "list", "--role", "INSTRUCTOR", "--json")
    assert result.exit_code == 0, result.stderr


# --------------------------------------------------------------------------- help and envvar


def _all_params() -> list[tuple[str, Any]]:
    import typer

    from eduflow.cli import app

    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        found.extend((path, p) for p in command.params)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "eduflow")
    return found


def test_no_help_text_holds_brackets_rich_would_eat() -> None:
    eaten = [(path, p.name) for path, p in _all_params() if "[" in (getattr(p, "help", "") or "")]
    assert eaten == []


def test_settings_backed_options_name_their_variable_and_default(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eduflow.config import Settings

    monkeypatch.setenv("COLUMNS", "200")  # help lines unwrapped
    result = cli("serve", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for field in ("host", "port", "workers", "forwarded_allow_ips", "keep_alive_timeout"):
        assert f"EDUFLOW_{field.upper()}" in text, field
    for field in ("host", "port", "workers", "keep_alive_timeout", "graceful_timeout"):
        assert f"(default: {Settings.model_fields[field].default}" in text, field
    assert "EDUFLOW_PUBLIC_BASE_URL" in " ".join(cli("cache", "warm", "--help").stdout.split())


def test_links_follow_the_port_unless_a_public_base_url_is_set() -> None:
    from eduflow.config import Settings

    assert Settings(port=8123).public_base_url == "http://localhost:8123"
    assert Settings(port=8123, public_base_url="https://x.example").public_base_url == (
        "https://x.example"
    )


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("admin", "users", "list", "--active", "--inactive"),
            "--active and --inactive contradict each other; give one of them "
            "(see `eduflow admin users list --help`)",
        ),
        (
            ("admin", "courses", "list", "--published", "--draft"),
            "--published and --draft contradict each other; give one of them "
            "(see `eduflow admin courses list --help`)",
        ),
        (
            ("jobs", "run", "daily_report", "--date", "31-12-2024"),
            "Invalid value for '--date': '31-12-2024' is not a date (YYYY-MM-DD) "
            "(see `eduflow jobs run --help`)",
        ),
        (
            ("report", "daily", "--date", "2024-02-30"),
            "Invalid value for '--date': '2024-02-30' is not a date (YYYY-MM-DD) "
            "(see `eduflow report daily --help`)",
        ),
        (
            ("admin", "audit", "list", "--since", "lately"),
            "Invalid value for '--since': 'lately' is neither a duration like 12h/7d nor an "
            "ISO 8601 date (see `eduflow admin audit list --help`)",
        ),
        (
            ("admin", "users", "list", "--bogus"),
            "No such option: --bogus (see `eduflow admin users list --help`)",
        ),
        (("nope",), "No such command 'nope'. (see `eduflow --help`)"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)  # fmt: skip
def test_usage_errors_exit_2_in_one_line(cli: Any, args: tuple[str, ...], line: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.stdout
    assert _line(result) == f"Error: {line}"


def test_one_of_a_flag_pair_still_filters(cli: Any, session: Any) -> None:
    import json

    make_user(session, username="on")
    make_user(session, username="off", is_active=False)
    session.commit()
    inactive = json.loads(cli("admin", "users", "list", "--inactive", "--json").stdout)
    assert [u["username"] for u in inactive["results"]] == ["off"]


# --------------------------------------------------------------------------- passwords


def test_a_password_prompt_without_a_terminal_is_one_line_and_no_warning() -> None:
    from eduflow.db import session_scope
    from eduflow.services import users

    result = _eduflow(
        "admin", "users", "create", "--username", "zed", "--email", "zed@example.org",
        input="secret-pass-1\nsecret-pass-1\n", start_new_session=True,  # no controlling tty
    )  # fmt: skip
    assert result.returncode == 2
    assert _line(result) == (
        "Error: no terminal to ask for the password on; pipe it in with --password-stdin"
    )
    with session_scope() as session:
        assert users.list_users(session, search="zed", limit=1)[0] == 0


# --------------------------------------------------------------------------- cache warm


def test_cache_warm_is_quiet_and_serves_every_host(client: Any, session: Any) -> None:
    owner = make_user(session, Role.instructor, username="grace")
    course = make_course(session, owner, title="Warm course")
    make_lesson(session, course)
    session.commit()
    env = {**os.environ, "EDUFLOW_LOG_LEVEL": "INFO"}  # access lines would show at INFO
    result = _eduflow("cache", "warm", "--pages", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "✓ 3 responses cached\n"  # list page, course, lesson list
    assert result.stderr == ""  # no access-log line per warming request
    for host in ("api.example.com", "other.example"):
        for url in ("/api/v1/courses/", f"/api/v1/lessons/?course={course.id}"):
            assert client.get(url, headers={"Host": host}).headers["x-cache"] == "hit", url


# --------------------------------------------------------------------------- make run


def test_make_run_serves_on_the_port_given(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    # The suite runs from the environment `make install` made (README: `make test`).
    assert (venv / "bin" / "eduflow").exists(), "run the tests from the installed venv"
    port = free_port()
    env = {**os.environ, "EDUFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'eduflow.db'}"}
    env.pop("EDUFLOW_REDIS_URL")
    env["EDUFLOW_LOG_LEVEL"] = "INFO"
    # -o: the environment counts as installed (the test never runs pip).
    proc = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "-o", f"{venv}/bin/eduflow", "run",
         f"PORT={port}", f"VENV={venv}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer on the port given")
    finally:
        # SIGTERM to the server make started: it stops gracefully, so make exits 0.
        servers = [p for p in _descendants(proc.pid) if b"eduflow\x00serve\x00" in _cmdline(p)]
        for pid in servers or [proc.pid]:
            os.kill(pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    starting = [line for line in err.splitlines() if '"serve_starting"' in line]
    assert len(starting) == 1 and f'"port":{port}' in starting[0], err


def _descendants(pid: int) -> list[int]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [p for c in children for p in (c, *_descendants(c))]


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
