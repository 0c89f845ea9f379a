"""``eduflow admin audit``: read the audit trail via ``services.audit`` (no way to change it)."""

from __future__ import annotations

import typer

from eduflow.cli.failures import check_since

app = typer.Typer(no_args_is_help=True, help="Read the audit trail.")

AUDIT_COLUMNS = ["id", "at", "actor", "action", "target_type", "target_id", "details", "request_id"]


@app.command("list")
def list_(
    actor: str | None = typer.Option(None, help="Only this actor: a username or 'operator'."),
    action: str | None = typer.Option(None, help="Only this action, e.g. user.role_changed."),
    target_type: str | None = typer.Option(None, help="Only this target type, e.g. user."),
    target_id: str | None = typer.Option(None, help="Only this target id."),
    since: str | None = typer.Option(
        None,
        callback=check_since,
        help="Only records since then: 30m, 12h, 7d, 2w or an ISO 8601 date/time.",
    ),
    limit: int = typer.Option(50, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List audit records, newest first."""
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import audit
    from eduflow.services.permissions import OPERATOR

    filters = audit.AuditFilters(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=audit.parse_since(since) if since is not None else None,
    )
    with session_scope(read_only=True) as session:
        count, rows = audit.list_records(session, OPERATOR, filters, limit=limit)
    results = [r.model_dump() for r in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, AUDIT_COLUMNS, title="Audit trail")
    show_more(len(results), count)
