"""What the command line says when a command cannot run: one line, and the exit code.

Exit codes: 0 done; 1 the command ran and failed or was refused; 2 the command line itself
is wrong (an unknown option, a value that is not of its type or not one of its choices,
flags that contradict each other, a missing password source).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date

from typer import BadParameter
from typer._click.exceptions import UsageError  # Typer vendors Click

from eduflow.errors import DatabaseMissing, EduFlowError, Invalid

USAGE_EXIT = 2
UNAVAILABLE = "the database is unavailable; check EDUFLOW_DATABASE_URL"
NOT_MIGRATED = "the database is not migrated; run `eduflow db upgrade`"
_MISSING = re.compile(r'database "([^"]*)" does not exist')
# undefined_table, undefined_column: the schema is older than the code (or absent).
_UNDEFINED_SQLSTATES = frozenset({"42P01", "42703"})
_UNDEFINED_SQLITE = ("no such table", "no such column")
_QUERY_CANCELED = "57014"  # statement_timeout (or an operator's pg_cancel_backend)


def usage_line(exc: UsageError) -> str:
    """Click's message of a usage error, with where to read the command's help."""
    message = exc.format_message().strip().replace(": Value error, ", ": ")
    if exc.ctx is None:
        return message
    return f"{message} (see `{exc.ctx.command_path} --help`)"


def one_of(yes: bool, no: bool, yes_flag: str, no_flag: str) -> bool | None:
    """A pair of opposite flags as True, False or None (neither); both is a usage error."""
    if yes and no:
        raise UsageError(f"{yes_flag} and {no_flag} contradict each other; give one of them")
    return True if yes else False if no else None


def checked(parse: Callable[[str], object]) -> Callable[[str | None], str | None]:
    """An option callback that runs ``parse`` on the value: a value it refuses is a usage
    error (exit 2), not a failed command."""

    def callback(value: str | None) -> str | None:
        if value is not None:
            try:
                parse(value)
            except EduFlowError as exc:
                raise BadParameter(exc.errors[0]["message"] if exc.errors else exc.detail) from None
        return value

    return callback


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` day (``Invalid`` otherwise)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid.field("date", f"{text!r} is not a date (YYYY-MM-DD)") from None


def _since(text: str) -> object:
    from eduflow.services.audit import parse_since

    return parse_since(text)


def _duration(text: str) -> object:
    from eduflow.jobs.registry import parse_duration

    return parse_duration(text)


check_day = checked(parse_day)
check_since = checked(_since)
check_duration = checked(_duration)


def database_problem(exc: BaseException) -> str | None:
    """The one line for a database that does not exist, is not migrated to this version,
    or cannot be reached -- found anywhere in the chain of ``exc``; None otherwise."""
    from sqlalchemy.exc import DBAPIError

    from eduflow.db import is_connection_error

    for link in _chain(exc):
        if isinstance(link, DatabaseMissing):
            return link.detail
        if not isinstance(link, DBAPIError):
            continue
        text = str(link.orig)
        missing = _MISSING.search(text)
        if missing:
            return (
                f'database "{missing[1]}" does not exist; create it, then run `eduflow db upgrade`'
            )
        sqlstate = getattr(link.orig, "sqlstate", None)
        if sqlstate in _UNDEFINED_SQLSTATES or any(m in text for m in _UNDEFINED_SQLITE):
            return _not_migrated()
        if sqlstate == _QUERY_CANCELED:
            return _timed_out()
        if is_connection_error(link):
            return UNAVAILABLE
    return None


def behind_line(current: str | None, head: str | None, known: bool = True) -> str | None:
    """The line for a schema that is not at the shipped head (None when it is); ``known``:
    ``current`` is one of this version's revisions (else the database is newer)."""
    if current == head:
        return None
    if current is None:
        return NOT_MIGRATED
    if not known:
        return f"the database is at revision {current}, unknown to this version; upgrade EduFlow"
    return (
        f"the database is at revision {current}, this version needs {head}; "
        "run `eduflow db upgrade`"
    )


def schema_line() -> str | None:
    """``behind_line`` of the configured database."""
    from eduflow import schema

    current, head = schema.current_revision(), schema.head_revision()
    return behind_line(current, head, schema.is_known_revision(current))


def _timed_out() -> str:
    from eduflow.config import get_settings

    limit = get_settings().db_statement_timeout_ms
    return (
        f"the database cancelled a statement after {limit} ms "
        "(EDUFLOW_DB_STATEMENT_TIMEOUT_MS; 0 lifts the limit)"
    )


def _not_migrated() -> str | None:
    try:
        return schema_line()
    except Exception:  # the revision cannot be read either: the schema is missing
        return NOT_MIGRATED


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__
