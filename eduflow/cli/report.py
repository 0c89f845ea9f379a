"""``eduflow report``: build and show the daily figures."""

from __future__ import annotations

import typer

from eduflow.cli.failures import check_day

app = typer.Typer(no_args_is_help=True, help="Build and show reports.")


@app.command("daily")
def daily(
    date: str | None = typer.Option(
        None, "--date", callback=check_day, help="The day (YYYY-MM-DD, UTC); default: yesterday."
    ),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Build the report anew even when a final one is stored."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
) -> None:
    """Show a day's report: the stored one once the day is over and it was built after
    (the periodic job does that after midnight), else build and store it now."""
    from eduflow.cli.failures import parse_day
    from eduflow.cli.output import console, print_json, print_record, print_table
    from eduflow.db import session_scope
    from eduflow.services.reports import daily_report, default_report_day, report_to_dict

    day = default_report_day() if date is None else parse_day(date)
    with session_scope() as session:
        data = report_to_dict(daily_report(session, day, rebuild=rebuild))
    if as_json:
        print_json(data)
        return
    top = data.pop("top_courses")
    print_record(data, title=f"Daily report {data['day']}")
    if top:
        print_table(top, ["course_id", "title", "enrollments"], title="Top courses")
    else:
        console.print("no enrollments that day", highlight=False)
