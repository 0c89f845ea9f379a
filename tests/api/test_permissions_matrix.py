"""Role x operation matrix over courses, lessons and enrollments (SPEC section 1).

Roles: anonymous, student, enrolled student, owner instructor, other instructor, admin.
Objects the caller may not see are 404; visible objects the caller may not change are 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_enrollment, make_lesson, make_user

API = "/api/v1"
ROLES = ("anonymous", "student", "enrolled", "owner", "other", "admin")


@dataclass
class World:
    """Users and their tokens, a published course with a lesson and an enrollment, a draft."""

    session: Any
    users: dict[str, Any]
    headers: dict[str, dict[str, str]]
    course: Any
    lesson: Any
    enrollment: Any
    draft: Any
    draft_lesson: Any

    def fresh_course(self, **fields: Any) -> Any:
        course = make_course(self.session, owner=self.users["owner"], **fields)
        self.session.commit()
        return course

    def fresh_lesson(self, course: Any | None = None) -> Any:
        lesson = make_lesson(self.session, course or self.fresh_course())
        self.session.commit()
        return lesson

    def fresh_enrollment(self, status: str = "active") -> Any:
        course = self.fresh_course(price=10)
        enrollment = make_enrollment(self.session, self.users["enrolled"], course, status=status)
        self.session.commit()
        return enrollment


@pytest.fixture
def world(session: Any) -> World:
    users = {
        "student": make_user(session, Role.student, username="student"),
        "enrolled": make_user(session, Role.student, username="enrolled"),
        "owner": make_user(session, Role.instructor, username="owner"),
        "other": make_user(session, Role.instructor, username="other"),
        "admin": make_user(session, Role.admin, username="admin"),
    }
    headers = {"anonymous": {}}
    for name, user in users.items():
        headers[name] = {"Authorization": f"Bearer {issue_tokens(session, user).access}"}
    course = make_course(session, owner=users["owner"], capacity=100)
    lesson = make_lesson(session, course, content="secret")
    enrollment = make_enrollment(session, users["enrolled"], course)
    draft = make_course(session, owner=users["owner"], is_published=False)
    draft_lesson = make_lesson(session, draft)
    session.commit()
    return World(session, users, headers, course, lesson, enrollment, draft, draft_lesson)


Request = Callable[[World], tuple[str, str, dict[str, Any] | None]]


def _row(*codes: int) -> dict[str, int]:
    return dict(zip(ROLES, codes, strict=True))


#   operation: (request builder, expected status per role in ROLES order)
MATRIX: dict[str, tuple[Request, dict[str, int]]] = {
    # courses
    "list courses": (lambda w: ("GET", "/courses/", None), _row(200, 200, 200, 200, 200, 200)),
    "show published course": (
        lambda w: ("GET", f"/courses/{w.course.id}/", None),
        _row(200, 200, 200, 200, 200, 200),
    ),
    "show draft course": (
        lambda w: ("GET", f"/courses/{w.draft.id}/", None),
        _row(404, 404, 404, 200, 404, 200),
    ),
    "create course": (
        lambda w: ("POST", "/courses/", {"title": "New course"}),
        _row(401, 403, 403, 201, 201, 201),
    ),
    "patch published course": (
        lambda w: ("PATCH", f"/courses/{w.course.id}/", {"description": "x"}),
        _row(401, 403, 403, 200, 403, 200),
    ),
    "put published course": (
        lambda w: ("PUT", f"/courses/{w.course.id}/", {"title": "Again", "is_published": True}),
        _row(401, 403, 403, 200, 403, 200),
    ),
    "patch draft course": (
        lambda w: ("PATCH", f"/courses/{w.draft.id}/", {"description": "x"}),
        _row(401, 404, 404, 200, 404, 200),
    ),
    "delete published course": (
        lambda w: ("DELETE", f"/courses/{w.fresh_course().id}/", None),
        _row(401, 403, 403, 204, 403, 204),
    ),
    "delete draft course": (
        lambda w: ("DELETE", f"/courses/{w.fresh_course(is_published=False).id}/", None),
        _row(401, 404, 404, 204, 404, 204),
    ),
    # lessons
    "list lessons of published course": (
        lambda w: ("GET", f"/lessons/?course={w.course.id}", None),
        _row(200, 200, 200, 200, 200, 200),
    ),
    "list lessons of draft": (
        lambda w: ("GET", f"/lessons/?course={w.draft.id}", None),
        _row(404, 404, 404, 200, 404, 200),
    ),
    "show lesson of published course": (
        lambda w: ("GET", f"/lessons/{w.lesson.id}/", None),
        _row(200, 200, 200, 200, 200, 200),
    ),
    "show lesson of draft": (
        lambda w: ("GET", f"/lessons/{w.draft_lesson.id}/", None),
        _row(404, 404, 404, 200, 404, 200),
    ),
    "create lesson in published course": (
        lambda w: ("POST", "/lessons/", {"course": w.course.id, "title": "More"}),
        _row(401, 403, 403, 201, 403, 201),
    ),
    "create lesson in draft": (
        lambda w: ("POST", "/lessons/", {"course": w.draft.id, "title": "More"}),
        _row(401, 404, 404, 201, 404, 201),
    ),
    "patch lesson": (
        lambda w: ("PATCH", f"/lessons/{w.lesson.id}/", {"duration_min": 5}),
        _row(401, 403, 403, 200, 403, 200),
    ),
    "put lesson of draft": (
        lambda w: (
            "PUT",
            f"/lessons/{w.draft_lesson.id}/",
            {"course": w.draft.id, "title": "Replaced"},
        ),
        _row(401, 404, 404, 200, 404, 200),
    ),
    "delete lesson": (
        lambda w: ("DELETE", f"/lessons/{w.fresh_lesson(w.course).id}/", None),
        _row(401, 403, 403, 204, 403, 204),
    ),
    # enrollments
    "enroll in published course": (
        lambda w: ("POST", "/enrollments/", {"course": w.course.id}),
        _row(401, 201, 409, 403, 403, 403),
    ),
    "enroll in draft": (
        lambda w: ("POST", "/enrollments/", {"course": w.draft.id}),
        _row(401, 404, 404, 403, 403, 403),
    ),
    "list enrollments": (
        lambda w: ("GET", "/enrollments/", None),
        _row(401, 200, 200, 200, 200, 200),
    ),
    "show enrollment": (
        lambda w: ("GET", f"/enrollments/{w.enrollment.id}/", None),
        _row(401, 404, 200, 200, 404, 200),
    ),
    "confirm pending enrollment": (
        lambda w: ("POST", f"/enrollments/{w.fresh_enrollment('pending').id}/confirm/", None),
        _row(401, 404, 403, 200, 404, 200),
    ),
    "cancel enrollment": (
        lambda w: ("DELETE", f"/enrollments/{w.fresh_enrollment().id}/", None),
        _row(401, 404, 204, 403, 404, 204),
    ),
}


@pytest.mark.parametrize("operation", list(MATRIX))
def test_matrix(operation: str, world: World, client: Any) -> None:
    build, expected = MATRIX[operation]
    got = {}
    for role in ROLES:
        method, path, body = build(world)
        response = client.request(method, API + path, json=body, headers=world.headers[role])
        got[role] = response.status_code
    assert got == expected


def test_lesson_content_only_for_owner_admin_and_active_students(
    world: World, client: Any, session: Any
) -> None:
    pending = make_user(session, Role.student, username="pending")
    make_enrollment(session, pending, world.course, status="pending")
    session.commit()
    world.headers["pending"] = {"Authorization": f"Bearer {issue_tokens(session, pending).access}"}
    session.commit()
    readers = {"enrolled", "owner", "admin"}
    for role in (*ROLES, "pending"):
        headers = world.headers[role]
        detail = client.get(f"{API}/lessons/{world.lesson.id}/", headers=headers).json()
        listed = client.get(f"{API}/lessons/?course={world.course.id}", headers=headers).json()
        expected = "secret" if role in readers else None
        assert detail["content"] == expected, role
        assert listed["results"][0]["content"] == expected, role
        assert detail["title"] == world.lesson.title


def test_enrollment_lists_are_scoped(world: World, client: Any) -> None:
    counts = {
        role: client.get(f"{API}/enrollments/", headers=world.headers[role]).json()["count"]
        for role in ROLES[1:]
    }
    assert counts == {"student": 0, "enrolled": 1, "owner": 1, "other": 0, "admin": 1}


def test_a_demoted_instructor_loses_the_owner_rights_at_once(
    client: Any, session: Any, login: Any
) -> None:
    """Role AND ownership: the rows stay hers, the owner's rights go with the role."""
    grace = make_user(session, Role.instructor, username="grace")
    make_user(session, Role.admin, username="root")
    published = make_course(session, owner=grace, price=10)
    lesson = make_lesson(session, published, content="Owner notes")
    draft = make_course(session, owner=grace, is_published=False)
    pending = make_enrollment(session, make_user(session), published, status="pending")
    session.commit()
    headers = login("grace")
    assert client.get(f"{API}/lessons/{lesson.id}/", headers=headers).json()["content"]
    assert client.get(f"{API}/enrollments/{pending.id}/", headers=headers).status_code == 200

    demoted = client.patch(
        f"{API}/users/{grace.id}/", json={"role": "student"}, headers=login("root")
    )
    assert demoted.status_code == 200, demoted.text
    # The same token keeps working, with the new role.
    assert client.get(f"{API}/auth/me/", headers=headers).json()["role"] == "student"
    assert client.get(f"{API}/courses/{draft.id}/", headers=headers).status_code == 404
    change = client.patch(f"{API}/courses/{published.id}/", json={"title": "Mine"}, headers=headers)
    assert change.status_code == 403
    add = client.post(
        f"{API}/lessons/", json={"course": published.id, "title": "More"}, headers=headers
    )
    assert add.status_code == 403
    assert client.get(f"{API}/lessons/{lesson.id}/", headers=headers).json()["content"] is None
    assert client.get(f"{API}/enrollments/{pending.id}/", headers=headers).status_code == 404
    confirm = client.post(f"{API}/enrollments/{pending.id}/confirm/", headers=headers)
    assert confirm.status_code == 404
    assert client.delete(f"{API}/courses/{published.id}/", headers=headers).status_code == 403
    assert client.get(f"{API}/courses/{published.id}/").json()["title"] != "Mine"
