"""The operator command line as a whole: help, completion, usage errors."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any


def _complete(words: str) -> list[str]:
    env = {
        **os.environ,
        "_EDUFLOW_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    out = subprocess.run(
        [sys.executable, "-m", "eduflow.cli"], env=env, capture_output=True, text=True, timeout=60
    )
    return out.stdout.split()


def test_shell_completion_knows_the_admin_commands() -> None:
    assert _complete("eduflow admin us") == ["users"]
    assert set(_complete("eduflow admin users s")) == {"show", "set-role", "set-password"}
    assert "enrollments" in _complete("eduflow admin en")
    assert _complete("eduflow demo s") == ["seed"]


def test_help_lists_every_admin_command(cli: Any) -> None:
    for group, commands in {
        "users": (
            "create",
            "list",
            "show",
            "set-role",
            "activate",
            "deactivate",
            "set-password",
            "delete",
        ),
        "courses": ("list", "show", "create", "publish", "unpublish", "transfer", "delete"),
        "enrollments": ("list", "confirm", "cancel"),
        "audit": ("list",),
    }.items():
        result = cli("admin", group, "--help")
        assert result.exit_code == 0
        for command in commands:
            assert command in result.stdout, (group, command)


def test_unknown_option_is_a_usage_error(cli: Any) -> None:
    result = cli("admin", "users", "list", "--colour")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_database_down_is_one_line(cli: Any, monkeypatch: Any) -> None:
    from tests.conftest import free_port, reset_process_state

    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    reset_process_state()
    try:
        result = cli("admin", "users", "list")
    finally:
        monkeypatch.undo()
        reset_process_state()
    assert result.exit_code == 1
    assert "database" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eduflow.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_real_process_errors_are_one_line_without_traceback() -> None:
    missing = _run("admin", "users", "show", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: No user matches 'nobody'"
    # No terminal and no --password-stdin: a clear refusal, not a hang, a GetPassWarning
    # or a traceback (tests/cli/test_conventions.py runs it without a controlling terminal).
    no_password = _run("admin", "users", "create", "--username", "zed", "--email", "z@example.org")
    if no_password.returncode != 0:
        assert no_password.returncode == 2
        assert no_password.stderr.strip() == (
            "Error: no terminal to ask for the password on; pipe it in with --password-stdin"
        )


def test_admin_commands_work_on_the_embedded_sqlite_default(cli: Any, sqlite_url: str) -> None:
    import json

    from eduflow import schema

    schema.upgrade("head")
    created = cli(
        "admin", "users", "create", "--username", "ada", "--email", "ada@example.org",
        "--role", "instructor", "--password-stdin", input="sqlite-pass-1\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    course = cli("admin", "courses", "create", "--owner", "ada", "--title", "On SQLite", "--json")
    assert course.exit_code == 0, course.stderr
    course_id = str(json.loads(course.stdout)["id"])
    assert cli("admin", "courses", "publish", course_id).exit_code == 0
    listed = json.loads(cli("admin", "courses", "list", "--published", "--json").stdout)
    assert [c["title"] for c in listed["results"]] == ["On SQLite"]
