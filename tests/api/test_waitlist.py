"""Waitlist over HTTP: joining a full course, positions, offers on freed seats, accept,
decline, leave, expiry, emails, visibility — on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from eduflow.models import Course, OutboxJob, WaitlistEntry
from eduflow.models._base import utcnow
from eduflow.models.users import Role
from tests.factories import make_course, make_user

W = "/api/v1/waitlist/"
E = "/api/v1/enrollments/"


def _full_course(session: Any, login: Any, capacity: int = 1, **fields: Any) -> tuple[Any, list]:
    """A published course whose ``capacity`` seats are taken; the holders' headers."""
    course = make_course(session, capacity=capacity, **fields)
    holders = [make_user(session, Role.student) for _ in range(capacity)]
    session.commit()
    return course, [login(u.username) for u in holders]


def _fill(client: Any, course: Any, holders: list) -> list[int]:
    ids = []
    for headers in holders:
        response = client.post(E, json={"course": course.id}, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _student(session: Any, login: Any) -> dict[str, str]:
    user = make_user(session, Role.student)
    session.commit()
    return login(user.username)


def _course_json(client: Any, course_id: int) -> dict[str, Any]:
    return client.get(f"/api/v1/courses/{course_id}/").json()


def test_full_course_409_links_the_waitlist_and_joining_gives_positions(
    client: Any, session: Any, login: Any
) -> None:
    course, holders = _full_course(session, login)
    _fill(client, course, holders)
    waiting = [_student(session, login) for _ in range(3)]

    refused = client.post(E, json={"course": course.id}, headers=waiting[0])
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/course-full")
    assert refused.json()["waitlist"] == W

    entries = []
    for i, headers in enumerate(waiting, start=1):
        response = client.post(W, json={"course": course.id}, headers=headers)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "waiting" and body["position"] == i
        assert body["offer_expires_at"] is None
        entries.append(body)
    assert _course_json(client, course.id)["waitlist_count"] == 3

    again = client.post(W, json={"course": course.id}, headers=waiting[1])
    assert again.status_code == 409 and again.json()["type"].endswith("/already-on-waitlist")
    enrolled = client.post(W, json={"course": course.id}, headers=holders[0])
    assert enrolled.status_code == 409 and enrolled.json()["type"].endswith("/already-enrolled")

    # Leaving moves everyone behind up; the list is in join order.
    assert client.delete(f"{W}{entries[0]['id']}/", headers=waiting[0]).status_code == 204
    mine = client.get(W, headers=waiting[2]).json()
    assert [(r["id"], r["position"]) for r in mine["results"]] == [(entries[2]["id"], 2)]
    assert _course_json(client, course.id)["waitlist_count"] == 2


def test_join_refused_while_a_seat_is_free_and_for_non_students(
    client: Any, session: Any, login: Any
) -> None:
    course = make_course(session, capacity=5)
    draft = make_course(session, capacity=1, is_published=False)
    instructor = make_user(session, Role.instructor)
    session.commit()
    student = _student(session, login)
    free = client.post(W, json={"course": course.id}, headers=student)
    assert free.status_code == 409 and free.json()["type"].endswith("/course-not-full")
    assert client.post(W, json={"course": draft.id}, headers=student).status_code == 404
    assert client.post(W, json={"course": 999_999}, headers=student).status_code == 404
    teacher = login(instructor.username)
    assert client.post(W, json={"course": course.id}, headers=teacher).status_code == 403
    assert client.post(W, json={"course": course.id}).status_code == 401
    assert client.post(W, json={"course": "x"}, headers=student).status_code == 422
    assert client.post(W, json={"course": 1, "x": 1}, headers=student).status_code == 422


def test_freed_seat_is_offered_in_the_same_transaction_and_held(
    client: Any, session: Any, login: Any
) -> None:
    course, holders = _full_course(session, login, capacity=2)
    enrollment_ids = _fill(client, course, holders)
    first, second, late = (_student(session, login) for _ in range(3))
    one = client.post(W, json={"course": course.id}, headers=first).json()
    two = client.post(W, json={"course": course.id}, headers=second).json()

    assert client.delete(f"{E}{enrollment_ids[0]}/", headers=holders[0]).status_code == 204
    offered = client.get(f"{W}{one['id']}/", headers=first).json()
    assert offered["status"] == "offered" and offered["position"] is None
    assert offered["offer_expires_at"] is not None
    assert client.get(f"{W}{two['id']}/", headers=second).json()["position"] == 1
    jobs = session.query(OutboxJob).filter(OutboxJob.job_name == "send_waitlist_offer").all()
    assert [j.args for j in jobs] == [{"entry_id": one["id"]}]

    # The seat is held: a newcomer cannot take it, and it is not "free" for the line either.
    assert client.post(E, json={"course": course.id}, headers=late).status_code == 409
    detail = _course_json(client, course.id)
    assert detail["seats_taken"] == 1 and detail["waitlist_count"] == 1

    accepted = client.post(f"{W}{one['id']}/accept/", headers=first)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["status"] == "active" and accepted.json()["course"] == course.id
    assert client.get(f"{W}{one['id']}/", headers=first).json()["status"] == "accepted"
    assert _course_json(client, course.id)["seats_taken"] == 2
    session.expire_all()
    assert session.get(Course, course.id).offers_open == 0
    again = client.post(f"{W}{one['id']}/accept/", headers=first)
    assert again.status_code == 409 and again.json()["type"].endswith("/no-open-offer")


def test_decline_and_expiry_pass_the_seat_on_in_join_order(
    client: Any, session: Any, login: Any
) -> None:
    course, holders = _full_course(session, login, price="9.00")
    enrollment_ids = _fill(client, course, holders)
    students = [_student(session, login) for _ in range(3)]
    entries = [client.post(W, json={"course": course.id}, headers=h).json() for h in students]
    assert client.delete(f"{E}{enrollment_ids[0]}/", headers=holders[0]).status_code == 204

    assert client.post(f"{W}{entries[1]['id']}/decline/", headers=students[1]).status_code == 409
    assert client.post(f"{W}{entries[0]['id']}/decline/", headers=students[0]).status_code == 204
    assert client.get(f"{W}{entries[1]['id']}/", headers=students[1]).json()["status"] == "offered"

    # Past its deadline, an accept is a 409 and the seat goes to the third student.
    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entries[1]["id"])
        .values(offer_expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    late = client.post(f"{W}{entries[1]['id']}/accept/", headers=students[1])
    assert late.status_code == 409 and late.json()["type"].endswith("/offer-expired")
    assert client.get(f"{W}{entries[1]['id']}/", headers=students[1]).json()["status"] == "expired"
    third = client.get(f"{W}{entries[2]['id']}/", headers=students[2]).json()
    assert third["status"] == "offered"
    paid = client.post(f"{W}{entries[2]['id']}/accept/", headers=students[2])
    assert paid.status_code == 201 and paid.json()["status"] == "pending"


def test_visibility_and_ownership(client: Any, session: Any, login: Any) -> None:
    course, holders = _full_course(session, login)
    _fill(client, course, holders)
    other_course = make_course(session, capacity=1)
    owner = session.get(Course, course.id).owner_id
    stranger = make_user(session, Role.instructor)
    admin = make_user(session, Role.admin)
    session.commit()
    student, someone = _student(session, login), _student(session, login)
    entry = client.post(W, json={"course": course.id}, headers=student).json()
    from eduflow.models import User

    owner_headers = login(session.get(User, owner).username)
    path = f"{W}{entry['id']}/"
    assert client.get(path, headers=owner_headers).status_code == 200
    assert client.get(path, headers=login(admin.username)).status_code == 200
    assert client.get(path, headers=someone).status_code == 404
    assert client.get(path, headers=login(stranger.username)).status_code == 404
    assert client.get(W, headers=login(stranger.username)).json()["count"] == 0
    assert client.get(W, headers=owner_headers).json()["count"] == 1
    assert client.get(f"{W}?course={other_course.id}", headers=owner_headers).json()["count"] == 0
    assert client.delete(path, headers=someone).status_code == 404
    assert client.post(f"{path}accept/", headers=owner_headers).status_code == 403
    assert client.delete(path, headers=owner_headers).status_code == 403
    assert client.delete(path, headers=login(admin.username)).status_code == 204
    assert client.delete(path, headers=student).status_code == 409
    listed = client.get(f"{W}?status=left", headers=student).json()
    assert [r["status"] for r in listed["results"]] == ["left"]
    assert client.get(f"{W}?status=nope", headers=student).status_code == 422


def test_capacity_raise_and_expiry_of_abandoned_pending_offer_seats(
    client: Any, session: Any, login: Any
) -> None:
    course, holders = _full_course(session, login, capacity=1, price="5.00")
    _fill(client, course, holders)
    students = [_student(session, login) for _ in range(3)]
    entries = [client.post(W, json={"course": course.id}, headers=h).json() for h in students]
    owner = session.get(Course, course.id).owner_id
    from eduflow.models import User

    owner_headers = login(session.get(User, owner).username)
    raised = client.patch(
        f"/api/v1/courses/{course.id}/", json={"capacity": 2}, headers=owner_headers
    )
    assert raised.status_code == 200, raised.text
    statuses = [
        client.get(f"{W}{e['id']}/", headers=h).json()["status"]
        for e, h in zip(entries, students, strict=True)
    ]
    assert statuses == ["offered", "waiting", "waiting"]
    # Capacity may not drop below taken + held seats.
    lowered = client.patch(
        f"/api/v1/courses/{course.id}/", json={"capacity": 1}, headers=owner_headers
    )
    assert lowered.status_code == 422

    from eduflow.db import session_scope
    from eduflow.services.enrollments import expire_abandoned_enrollments

    with session_scope() as s:
        assert expire_abandoned_enrollments(s, timedelta(0), now=utcnow() + timedelta(1)) == 1
    statuses = [
        client.get(f"{W}{e['id']}/", headers=h).json()["status"]
        for e, h in zip(entries, students, strict=True)
    ]
    assert statuses == ["offered", "offered", "waiting"]
    assert _course_json(client, course.id)["waitlist_count"] == 1


def test_expiry_job_passes_seats_on_and_offer_email_is_sent_once(
    client: Any, session: Any, login: Any, smtp_server: Any
) -> None:
    from tests.jobs.conftest import work_burst

    course, holders = _full_course(session, login)
    enrollment_ids = _fill(client, course, holders)
    students = [_student(session, login) for _ in range(2)]
    entries = [client.post(W, json={"course": course.id}, headers=h).json() for h in students]
    client.delete(f"{E}{enrollment_ids[0]}/", headers=holders[0])
    work_burst()
    offers = [m for m in smtp_server.messages if "is yours" in m["Subject"]]
    assert len(offers) == 1
    text = offers[0].get_body(("plain",)).get_content()
    assert f"/waitlist/{entries[0]['id']}/" in text and "UTC" in text

    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entries[0]["id"])
        .values(offer_expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    from eduflow.jobs.waitlist_tasks import expire_waitlist_offers, send_waitlist_offer

    assert expire_waitlist_offers() == 1
    assert expire_waitlist_offers() == 0
    work_burst()
    assert send_waitlist_offer(entries[0]["id"]) == "already-sent"  # a rerun sends nothing
    offers = [m for m in smtp_server.messages if "is yours" in m["Subject"]]
    assert len(offers) == 2
    assert offers[1]["To"] != offers[0]["To"]
    assert client.get(f"{W}{entries[1]['id']}/", headers=students[1]).json()["status"] == "offered"


@pytest.mark.parametrize("via", ["cli", "service"])
def test_admin_cancel_frees_the_seat_for_the_line(
    via: str, client: Any, session: Any, login: Any, cli: Any
) -> None:
    course, holders = _full_course(session, login)
    enrollment_ids = _fill(client, course, holders)
    student = _student(session, login)
    entry = client.post(W, json={"course": course.id}, headers=student).json()
    if via == "cli":
        result = cli("admin", "enrollments", "cancel", str(enrollment_ids[0]), "--yes")
        assert result.exit_code == 0, result.output
    else:
        from eduflow.db import session_scope
        from eduflow.services.enrollments import cancel_enrollment
        from eduflow.services.permissions import OPERATOR

        with session_scope() as s:
            cancel_enrollment(s, OPERATOR, enrollment_ids[0])
    assert client.get(f"{W}{entry['id']}/", headers=student).json()["status"] == "offered"


def test_leaving_every_line_passes_held_seats_on(client: Any, session: Any, login: Any) -> None:
    from eduflow.db import session_scope
    from eduflow.models import User
    from eduflow.services.waitlist import leave_every_line

    course, holders = _full_course(session, login)
    enrollment_ids = _fill(client, course, holders)
    leaver = make_user(session, Role.student)
    session.commit()
    first = login(leaver.username)
    second = _student(session, login)
    mine = client.post(W, json={"course": course.id}, headers=first).json()
    theirs = client.post(W, json={"course": course.id}, headers=second).json()
    client.delete(f"{E}{enrollment_ids[0]}/", headers=holders[0])
    assert client.get(f"{W}{mine['id']}/", headers=first).json()["status"] == "offered"
    with session_scope() as s:
        assert leave_every_line(s, session.get(User, leaver.id).id) == 1
    assert client.get(f"{W}{mine['id']}/", headers=first).json()["status"] == "left"
    assert client.get(f"{W}{theirs['id']}/", headers=second).json()["status"] == "offered"
