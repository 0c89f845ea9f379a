"""The command line's skeleton: version, help, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from eduflow import __version__


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_is_fast_and_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "eduflow.cli.__main__", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("serve", "worker", "db", "admin", "jobs", "cache"):
        assert command in out.stdout
    # Heavy modules must not be imported for --help.
    for heavy in ("fastapi", "sqlalchemy", "redis", "rq", "uvicorn"):
        assert f" {heavy}\n" not in out.stderr, f"{heavy} imported by --help"


def test_serve_refuses_many_workers_without_redis(cli: Any, monkeypatch: Any) -> None:
    from eduflow.config import reset_settings

    monkeypatch.delenv("EDUFLOW_REDIS_URL")
    reset_settings()
    result = cli("serve", "--workers", "2")
    assert result.exit_code == 1
    assert "EDUFLOW_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_requires_secret_key(cli: Any, monkeypatch: Any) -> None:
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_ENV", "production")
    monkeypatch.delenv("EDUFLOW_SECRET_KEY")
    reset_settings()
    result = cli("serve")
    assert result.exit_code == 1
    assert "EDUFLOW_SECRET_KEY is required" in result.stderr


def test_serve_reads_its_port_from_the_environment(cli: Any, monkeypatch: Any) -> None:
    """envvar=: an option backed by a setting reads its variable (Typer 0.27 and later)."""
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_PORT", "70000")
    reset_settings()  # a Typer that ignored envvar= would fail on the settings, not serve
    result = cli("serve")
    assert result.exit_code == 2
    line = _one_line(result)  # the range's wording is Typer's own (it changes between versions)
    assert line.startswith("Error: Invalid value for '--port' (env var: 'EDUFLOW_PORT'): ")
    assert "65535" in line and line.endswith("(see `eduflow serve --help`)")


def _one_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_db_current_reports_head(cli: Any) -> None:
    result = cli("db", "current")
    assert result.exit_code == 0
    assert "up to date" in result.stdout


def test_unreachable_database_is_one_line_not_a_traceback(
    cli: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    from tests.conftest import free_port, reset_process_state

    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    missing_file = tmp_path / "no-such-dir" / "eduflow.db"
    expected = {
        closed: "Error: the database is unavailable; check EDUFLOW_DATABASE_URL",
        f"sqlite:///{missing_file}": (
            f'Error: database "{missing_file}" does not exist; `eduflow db upgrade` creates it'
        ),
    }
    try:
        for url, line in expected.items():
            monkeypatch.setenv("EDUFLOW_DATABASE_URL", url)
            reset_process_state()
            for args in (("admin", "users", "list"), ("db", "current")):
                result = cli(*args)
                assert result.exit_code == 1, (url, args, result.stdout)
                assert result.stderr.strip().splitlines() == [line], (url, args)
    finally:
        monkeypatch.undo()
        reset_process_state()
    assert not missing_file.parent.exists()


def test_unexpected_errors_are_one_line_without_sql(cli: Any, monkeypatch: Any) -> None:
    from eduflow.services import users

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom\n[SQL: SELECT password_hash FROM users]")

    monkeypatch.setattr(users, "list_users", broken)
    result = cli("admin", "users", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: unexpected error: RuntimeError: boom (rerun with --debug)"
    )


def test_a_lost_database_race_is_one_line(cli: Any, monkeypatch: Any) -> None:
    from sqlalchemy import text

    from eduflow.services import users

    def raced(session: Any, *_args: Any, **_kwargs: Any) -> Any:
        session.execute(text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$"))

    monkeypatch.setattr(users, "list_users", raced)
    result = cli("admin", "users", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: a concurrent change got in the way; nothing was changed, retry"
    )
