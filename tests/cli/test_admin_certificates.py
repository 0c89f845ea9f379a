"""``eduflow admin certificates``: list, show, revoke, issue — same rules as over HTTP."""

from __future__ import annotations

import json
from typing import Any

from eduflow.models.users import Role
from tests.factories import make_certificate, make_course, make_enrollment, make_user

CERTIFICATE_KEYS = {
    "serial", "course", "course_title", "student", "student_name", "issued_at", "revoked_at",
    "status", "verify_url", "revoke_reason",
}  # fmt: skip


def _one_line_error(result: Any, text: str) -> None:
    assert result.exit_code != 0, result.stdout
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _setup(session: Any) -> dict[str, Any]:
    teacher = make_user(session, Role.instructor, username="teacher")
    sql = make_course(session, teacher, title="Practical SQL")
    rust = make_course(session, teacher, title="Rust")
    ann = make_user(session, username="ann")
    ben = make_user(session, username="ben")
    rows = {
        "ann_sql": make_certificate(session, ann, sql, student_name="Анна Σοφία"),
        "ben_sql": make_certificate(session, ben, sql),
        "ann_rust": make_certificate(session, ann, rust),
        "enrollment": make_enrollment(session, ben, rust),
        "sql": sql,
    }
    session.commit()
    return rows


def test_list_json_and_filters(cli: Any, session: Any) -> None:
    rows = _setup(session)
    result = cli("admin", "certificates", "list", "--json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["count"] == 3
    assert {tuple(sorted(r)) for r in body["results"]} == {tuple(sorted(CERTIFICATE_KEYS))}
    by_course = json.loads(
        cli("admin", "certificates", "list", "--course", str(rows["sql"].id), "--json").stdout
    )
    assert {r["serial"] for r in by_course["results"]} == {
        rows["ann_sql"].serial,
        rows["ben_sql"].serial,
    }
    by_student = json.loads(
        cli("admin", "certificates", "list", "--student", "ann", "--json").stdout
    )
    assert {r["serial"] for r in by_student["results"]} == {
        rows["ann_sql"].serial,
        rows["ann_rust"].serial,
    }
    table = cli("admin", "certificates", "list")
    assert table.exit_code == 0 and "Анна Σοφία" in table.stdout
    _one_line_error(cli("admin", "certificates", "list", "--student", "nobody"), "nobody")


def test_show(cli: Any, session: Any) -> None:
    rows = _setup(session)
    result = cli("admin", "certificates", "show", rows["ann_sql"].serial, "--json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["student_name"] == "Анна Σοφία" and body["status"] == "valid"
    assert body["student"] == "ann" and body["course_title"] == "Practical SQL"
    _one_line_error(cli("admin", "certificates", "show", "no-such-serial"), "No certificate")


def test_revoke_asks_then_revokes_once(cli: Any, session: Any) -> None:
    rows = _setup(session)
    serial = rows["ben_sql"].serial
    declined = cli("admin", "certificates", "revoke", serial, "--reason", "Fraud", input="n\n")
    assert declined.exit_code != 0
    assert (
        json.loads(cli("admin", "certificates", "show", serial, "--json").stdout)["status"]
        == "valid"
    )
    done = cli("admin", "certificates", "revoke", serial, "--reason", " Fraud ", "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "revoked" and body["revoke_reason"] == "Fraud" and body["revoked_at"]
    audit = json.loads(
        cli("admin", "audit", "list", "--action", "certificate.revoked", "--json").stdout
    )
    [record] = audit["results"]
    assert (record["actor"], record["target_id"]) == ("operator", serial)
    _one_line_error(
        cli("admin", "certificates", "revoke", serial, "--reason", "again", "--yes"),
        "already revoked",
    )
    _one_line_error(
        cli("admin", "certificates", "revoke", serial, "--reason", "x", "--yes"), "reason"
    )
    _one_line_error(
        cli("admin", "certificates", "revoke", "nope", "--reason", "Fraud", "--yes"),
        "No certificate",
    )
    assert cli("admin", "certificates", "revoke", serial, "--yes").exit_code != 0  # --reason needed


def test_issue_refuses_what_is_not_completed(cli: Any, session: Any) -> None:
    rows = _setup(session)
    _one_line_error(
        cli("admin", "certificates", "issue", str(rows["enrollment"].id)), "has not completed"
    )
    _one_line_error(cli("admin", "certificates", "issue", "999999"), "No enrollment")
    assert cli("admin", "certificates", "issue", "0").exit_code != 0
    assert json.loads(cli("admin", "certificates", "list", "--json").stdout)["count"] == 3
