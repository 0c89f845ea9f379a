"""Output helpers for every command: Rich tables on a terminal, plain text when piped, JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    """Stable, indented JSON on stdout (dates and decimals as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_value, sort_keys=False) + "\n")


def _json_value(value: Any) -> Any:
    # Same shapes as the API: ISO 8601 timestamps ("Z" for UTC), decimals as strings.
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> None:
    """A Rich table on a terminal; tab-separated lines when piped."""
    if not console.is_terminal:
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(_cell(row.get(c)) for c in columns) + "\n")
        return
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def print_record(record: dict[str, Any], title: str | None = None) -> None:
    """One object as a two-column key/value table."""
    print_table([{"field": k, "value": v} for k, v in record.items()], ["field", "value"], title)


def emit(data: Any, as_json: bool, columns: Sequence[str] | None = None) -> None:
    """Print a listing (list of dicts) or a record (dict) as JSON or a table."""
    if as_json:
        print_json(data)
    elif isinstance(data, dict):
        print_record(data)
    else:
        rows = list(data)
        print_table(rows, columns or (list(rows[0]) if rows else []))


def show_more(shown: int, total: int) -> None:
    """Tell (on stderr) that a listing was cut by ``--limit``."""
    if shown < total:
        err_console.print(f"showing {shown} of {total}; use --limit to see more", highlight=False)


def success(message: str) -> None:
    """A short confirmation line."""
    console.print(f"[green]✓[/] {message}", highlight=False)


def confirm_or_abort(question: str, assume_yes: bool = False) -> None:
    """Ask before destructive work; ``--yes`` skips it, "no" (or no answer) changes nothing."""
    import typer

    from eduflow.cli import fail

    if assume_yes:
        return
    try:
        answer = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        answer = False
    if not answer:
        raise fail("aborted; nothing was changed")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar for long work (silent when not on a terminal)."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar


def track(items: Iterable[Any], description: str, total: int | None = None) -> Iterator[Any]:
    """Iterate with a progress bar."""
    with progress(description, total) as bar:
        task = bar.task_ids[0]
        for item in items:
            yield item
            bar.advance(task)
