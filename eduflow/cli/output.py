"""Output helpers for every command: Rich tables on a terminal, plain text when piped, JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


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


def success(message: str) -> None:
    """A short confirmation line."""
    console.print(f"[green]✓[/] {message}", highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
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
