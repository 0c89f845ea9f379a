"""A database that is behind, not migrated or missing: ``eduflow db check`` says so with its
exit code, and every command that touches the database says it in one line (no
traceback, no raw ProgrammingError, no "retry shortly", no empty SQLite file left)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, reset_process_state

NOT_MIGRATED = "Error: the database is not migrated; run `eduflow db upgrade`"
# Every command that reads or writes data (each with arguments that would otherwise work).
DATA_COMMANDS = [
    ("admin", "users", "list"),
    ("admin", "users", "show", "ada"),
    ("admin", "courses", "list"),
    ("admin", "enrollments", "list"),
    ("admin", "waitlist", "list", "--course", "1"),
    ("admin", "certificates", "list"),
    ("admin", "audit", "list"),
    ("demo", "seed", "--courses", "1", "--students", "1", "--enrollments", "1"),
    ("jobs", "stats"),
    ("jobs", "run", "daily_report"),
    ("progress", "recompute"),
    ("report", "daily"),
]


def _admin_dsn() -> str:
    url = make_url(TEST_DATABASE_URL).set(database="postgres")
    return url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")


def _drop(name: str) -> None:
    with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the process at another database URL for the test, then back."""

    def use(url: str) -> None:
        monkeypatch.setenv("EDUFLOW_DATABASE_URL", url)
        reset_process_state()

    yield use
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", TEST_DATABASE_URL)
    reset_process_state()


@pytest.fixture
def empty_database(use_database: Any) -> Iterator[str]:
    """A fresh PostgreSQL database, never migrated, that the process uses."""
    name = make_url(TEST_DATABASE_URL).database + "_empty"
    _drop(name)
    with psycopg.connect(_admin_dsn(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    use_database(url)
    yield url
    reset_process_state()  # close the pool before dropping
    _drop(name)


def _one_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_db_check_exits_0_at_head(cli: Any) -> None:
    from eduflow.schema import head_revision

    result = cli("db", "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"the database is at head ({head_revision()})"


def test_db_check_exits_1_when_not_migrated_or_behind(cli: Any, empty_database: str) -> None:
    from alembic.script import ScriptDirectory

    from eduflow import schema

    result = cli("db", "check")
    assert (result.exit_code, _one_line(result)) == (1, NOT_MIGRATED)

    head = schema.head_revision()
    script = ScriptDirectory.from_config(schema.alembic_config())
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    schema.upgrade(previous)
    behind = cli("db", "check")
    assert behind.exit_code == 1
    assert _one_line(behind) == (
        f"Error: the database is at revision {previous}, this version needs {head}; "
        "run `eduflow db upgrade`"
    )
    # `db current` shows the same state (exit 0: it reports, `db check` decides).
    assert "needs `eduflow db upgrade`" in cli("db", "current").stdout


@pytest.mark.parametrize("args", DATA_COMMANDS, ids=" ".join)
def test_an_unmigrated_database_is_one_line(
    cli: Any, empty_database: str, args: tuple[str, ...]
) -> None:
    result = cli(*args)
    assert result.exit_code == 1, result.stdout
    assert _one_line(result) == NOT_MIGRATED


@pytest.mark.parametrize("args", [*DATA_COMMANDS, ("db", "current"), ("db", "check")], ids=" ".join)
def test_a_missing_postgresql_database_is_one_line(
    cli: Any, use_database: Any, args: tuple[str, ...]
) -> None:
    name = make_url(TEST_DATABASE_URL).database + "_absent"
    _drop(name)
    use_database(make_url(TEST_DATABASE_URL).set(database=name).render_as_string(False))
    result = cli(*args)
    assert result.exit_code == 1, result.stdout
    assert _one_line(result) == (
        f'Error: database "{name}" does not exist; create it, then run `eduflow db upgrade`'
    )


@pytest.mark.parametrize("args", [*DATA_COMMANDS, ("db", "current"), ("db", "check")], ids=" ".join)
def test_a_missing_sqlite_file_is_one_line_and_not_created(
    cli: Any, use_database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:  # fmt: skip
    path = tmp_path / "eduflow.db"
    use_database(f"sqlite:///{path}")
    monkeypatch.delenv("EDUFLOW_REDIS_URL")
    reset_process_state()
    result = cli(*args)
    assert result.exit_code == 1, result.stdout
    if args != ("jobs", "stats"):  # the embedded default has no job registry: its own line
        assert _one_line(result) == (
            f'Error: database "{path}" does not exist; `eduflow db upgrade` creates it'
        )
    assert list(tmp_path.iterdir()) == [], "an empty database file was left behind"


def test_db_upgrade_creates_the_sqlite_file(cli: Any, use_database: Any, tmp_path: Path) -> None:
    path = tmp_path / "eduflow.db"
    use_database(f"sqlite:///{path}")
    assert cli("db", "upgrade").exit_code == 0
    assert path.exists()
    assert cli("db", "check").exit_code == 0


@pytest.fixture
def statement_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A short EDUFLOW_DB_STATEMENT_TIMEOUT_MS for the test, then the usual one."""
    monkeypatch.setenv("EDUFLOW_DB_STATEMENT_TIMEOUT_MS", "200")
    reset_process_state()
    yield 200
    monkeypatch.delenv("EDUFLOW_DB_STATEMENT_TIMEOUT_MS")
    reset_process_state()


def test_a_cancelled_statement_is_its_own_line(cli: Any, statement_timeout: int) -> None:
    # Another session holds the table: the command's SELECT waits past the timeout.
    with _hold_table(TEST_DATABASE_URL, "users", "ACCESS EXCLUSIVE", 3.0):
        result = cli("admin", "users", "list")
    assert result.exit_code == 1, result.stdout
    assert _one_line(result) == (
        f"Error: the database cancelled a statement after {statement_timeout} ms "
        "(EDUFLOW_DB_STATEMENT_TIMEOUT_MS; 0 lifts the limit)"
    )


@contextmanager
def _hold_table(dsn: str, table: str, mode: str, seconds: float) -> Iterator[None]:
    """Another session holds ``table`` locked for ``seconds`` (from the block's start)."""
    import threading
    import time

    locked = threading.Event()

    def hold() -> None:
        with psycopg.connect(dsn.replace("postgresql+psycopg", "postgresql")) as holder:
            holder.execute(f"LOCK TABLE {table} IN {mode} MODE")
            locked.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(5)
    try:
        yield
    finally:
        thread.join()


def _longer_than_both_bounds(timeout_ms: int) -> float:
    """A wait past the server's statement timeout and the client's bound of a call."""
    from eduflow.deadline import GRACE_SECONDS

    return timeout_ms / 1000 + GRACE_SECONDS + 1.8  # with room for a loaded machine


def test_a_migration_is_bound_by_neither_timeout(
    cli: Any, empty_database: str, statement_timeout: int
) -> None:
    from alembic.script import ScriptDirectory

    from eduflow import schema

    head = schema.head_revision()
    previous = ScriptDirectory.from_config(schema.alembic_config()).get_revision(head).down_revision
    assert isinstance(previous, str)
    schema.upgrade(previous)
    reset_process_state()
    dsn = make_url(empty_database).render_as_string(hide_password=False)
    wait = _longer_than_both_bounds(statement_timeout)
    # The last migration alters `users`: it waits for the lock longer than either bound.
    with _hold_table(dsn, "users", "ACCESS EXCLUSIVE", wait):
        result = cli("db", "upgrade")
    assert result.exit_code == 0, result.stderr
    assert cli("db", "check").exit_code == 0


def test_the_demo_seed_is_bound_by_neither_timeout(cli: Any, statement_timeout: int) -> None:
    wait = _longer_than_both_bounds(statement_timeout)
    # The seed locks `users` against other writers before it reserves their ids.
    with _hold_table(TEST_DATABASE_URL, "users", "SHARE ROW EXCLUSIVE", wait):
        result = cli("demo", "seed", "--courses", "2", "--students", "3", "--enrollments", "4")
    assert result.exit_code == 0, result.stderr


def test_the_daily_report_build_is_bound_by_neither_timeout(
    cli: Any, statement_timeout: int
) -> None:
    # The nightly build counts the whole active set: batch work, like the seed.
    wait = _longer_than_both_bounds(statement_timeout)
    with _hold_table(TEST_DATABASE_URL, "enrollments", "ACCESS EXCLUSIVE", wait):
        result = cli("report", "daily", "--date", "2024-01-02", "--rebuild", "--json")
    assert result.exit_code == 0, result.stderr
    # and a request-sized statement of the same command stays bound
    with _hold_table(TEST_DATABASE_URL, "daily_reports", "ACCESS EXCLUSIVE", wait):
        shown = cli("report", "daily", "--date", "2024-01-02", "--json")
    assert shown.exit_code == 1
    assert "cancelled a statement" in _one_line(shown)
