"""Listings page the same way on both databases: cursors, bounded counts, search, deep pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import or_, select, text
from sqlmodel import Session, col

from eduflow import schema
from eduflow.db import get_engine, session_scope
from eduflow.errors import Invalid
from eduflow.models.users import Role, User
from eduflow.services import courses, enrollments, paging, users
from eduflow.services.courses import CourseFilters
from eduflow.services.paging import PageRequest, PageTooDeep
from eduflow.services.permissions import OPERATOR
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_course, make_enrollment, make_user
from tests.queries import counted_queries

ORDERINGS = ("created_at", "-created_at", "price", "-price", "title", "-title")
SEARCHES = ("python", "PYTHON", "Py", "50%", "a_b", "back\\slash", "Ünï", "nothing-at-all", " go ")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _catalogue(session: Any) -> None:
    """Courses with ties in every ordering and titles that tempt LIKE's wildcards."""
    owner = make_user(session, Role.instructor, username="owner")
    titles = [
        "Python basics",
        "Advanced python",
        "Go in practice",
        "50% off SQL",
        "500 SQL puzzles",
        "a_b testing",
        "aXb testing",
        "back\\slash tricks",
        "ÜNÏCODE and Ünïcode",
        "Python basics",  # a duplicate title: the id breaks the tie
    ]
    for i, title in enumerate(titles):
        make_course(
            session,
            owner,
            title=title,
            description="Learn PYTHON the calm way" if i % 4 == 0 else "Something else",
            price=Decimal(("9.90", "0", "9.90")[i % 3]),
            created_at=T0 + timedelta(days=i // 2),  # pairs share a timestamp
            is_published=i != 3,
        )
    for i in range(7):
        make_user(session, username=f"student_{i}{'x' * i}", email=f"s{i}@Example.org")


def _walk_by_cursor(session: Any, ordering: str, size: int) -> list[int]:
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = courses.courses_page(
            session, OPERATOR, CourseFilters(ordering=ordering), PageRequest(0, size, cursor)
        )
        seen += [c.id for c in page.results]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def _walk_by_page(session: Any, ordering: str, size: int) -> list[int]:
    seen: list[int] = []
    for number in range(20):
        page = courses.courses_page(
            session, OPERATOR, CourseFilters(ordering=ordering), PageRequest(number * size, size)
        )
        seen += [c.id for c in page.results]
    return seen


def _observations(session: Any) -> dict[str, Any]:
    """Everything a client could see of the listings, keyed by what was asked."""
    seen: dict[str, Any] = {}
    for ordering in ORDERINGS:
        seen[f"cursor {ordering}"] = _walk_by_cursor(session, ordering, 3)
        seen[f"page {ordering}"] = _walk_by_page(session, ordering, 3)
    for term in SEARCHES:
        found = courses.list_courses(session, None, CourseFilters(search=term), limit=None)
        seen[f"search {term!r}"] = (found[0], sorted(c.title for c in found[1]))
        count, people = users.list_users(session, search=term.strip() or None)
        seen[f"users {term!r}"] = (count, sorted(u.username for u in people))
    count, people = users.list_users(session, search="STUDENT_3")
    seen["users STUDENT_3"] = (count, [u.username for u in people])
    return seen


def test_cursor_pages_walk_every_ordering_exactly_once(session: Any) -> None:
    _catalogue(session)
    every = courses.list_courses(session, OPERATOR, limit=None)[1]
    for ordering in ORDERINGS:
        by_cursor = _walk_by_cursor(session, ordering, 3)
        assert by_cursor == _walk_by_page(session, ordering, 3), ordering
        assert sorted(by_cursor) == sorted(c.id for c in every), ordering
    titles = [c.title for c in courses.list_courses(session, OPERATOR, limit=None)[1]]
    assert len(titles) == 10


def test_listings_and_search_agree_on_sqlite_and_postgresql(sqlite_url: str) -> None:
    schema.upgrade("head")  # the process now points at a fresh SQLite file
    with session_scope() as lite:
        _catalogue(lite)
        on_sqlite = _observations(lite)
    with Session(get_engine(TEST_DATABASE_URL)) as postgres:
        assert postgres.get_bind().dialect.name == "postgresql"
        _catalogue(postgres)
        on_postgres = _observations(postgres)
        postgres.rollback()
    for asked, answer in on_postgres.items():
        # ORDER BY title compares with each database's collation; only ASCII titles here
        # sort the same everywhere, so title orderings are compared as sets.
        if "title" in asked:
            assert sorted(answer) == sorted(on_sqlite[asked]), asked
        else:
            assert answer == on_sqlite[asked], asked
    assert on_postgres["search 'python'"][0] == 5  # title or description, any case
    assert on_postgres["search '50%'"][1] == []  # the unpublished one; % is literal
    assert on_postgres["search 'a_b'"][1] == ["a_b testing"]  # _ is literal
    assert on_postgres["search 'back\\\\slash'"][1] == ["back\\slash tricks"]
    assert on_postgres["users STUDENT_3"] == (1, ["student_3xxx"])


def test_count_is_exact_up_to_the_limit_then_an_estimate(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalogue(session)
    monkeypatch.setattr(paging, "COUNT_EXACT_LIMIT", 9)
    small = courses.courses_page(session, None, CourseFilters(search="python"))
    assert (small.count, small.count_exact) == (5, True)
    exact_nine = courses.courses_page(session, None)  # 9 published: still exact
    assert (exact_nine.count, exact_nine.count_exact) == (9, True)
    every = courses.courses_page(session, OPERATOR)  # 10 > 9: the planner's estimate
    assert every.count_exact is False and every.count >= 10
    assert len(every.results) == 10  # the page itself is never estimated
    on_users = users.users_page(session)
    assert on_users.count_exact is (on_users.count <= 9)


def test_count_stops_reading_at_the_limit(session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _catalogue(session)
    monkeypatch.setattr(paging, "COUNT_EXACT_LIMIT", 2)
    with counted_queries() as statements:
        courses.courses_page(session, OPERATOR, request=PageRequest(0, 1))
    count_sql = next(s for s in statements if "count(" in s.lower())
    assert "LIMIT" in count_sql.upper()


def test_a_page_past_the_end_runs_no_row_query(session: Any) -> None:
    _catalogue(session)
    with counted_queries() as statements:
        page = courses.courses_page(session, None, request=PageRequest(offset=400, limit=20))
    assert (page.count, page.results, page.next_cursor) == (9, [], None)
    assert len(statements) == 1, statements


def test_deep_offsets_are_refused_and_bad_cursors_are_422(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalogue(session)
    monkeypatch.setattr(paging, "MAX_OFFSET", 4)
    assert courses.courses_page(session, None, request=PageRequest(4, 2)).results
    with pytest.raises(PageTooDeep):
        courses.courses_page(session, None, request=PageRequest(5, 2))
    cursor = courses.courses_page(session, None, request=PageRequest(0, 2)).next_cursor
    assert cursor is not None
    with pytest.raises(Invalid, match="another ordering"):
        courses.courses_page(
            session, None, CourseFilters(ordering="price"), PageRequest(0, 2, cursor)
        )
    for bad in ("not-base64!", "bnVsbA", cursor[:-3] + "AAA"):
        with pytest.raises(Invalid):
            courses.courses_page(session, None, request=PageRequest(0, 2, bad))


def test_enrollment_and_user_listings_walk_by_cursor(session: Any) -> None:
    owner = make_user(session, Role.instructor)
    other = make_user(session, Role.instructor)
    mine, theirs = make_course(session, owner), make_course(session, other)
    students = [make_user(session) for _ in range(5)]
    for i, student in enumerate(students):
        for course in (mine, theirs):
            make_enrollment(session, student, course, created_at=T0 + timedelta(hours=i // 2))

    def walk(actor: Any) -> list[int]:
        seen, cursor = [], None
        while True:
            page = enrollments.enrollments_page(session, actor, request=PageRequest(0, 3, cursor))
            seen += [e.id for e in page.results]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    every = [e.id for e in enrollments.list_enrollments(session, OPERATOR, limit=None)[1]]
    assert walk(OPERATOR) == every and len(every) == 10
    instructor = courses_actor(owner)
    assert walk(instructor) == [
        e.id for e in enrollments.list_enrollments(session, instructor, limit=None)[1]
    ]
    assert len(walk(instructor)) == 5
    cursor = users.users_page(session, request=PageRequest(0, 2)).next_cursor
    rest = users.users_page(session, request=PageRequest(0, 100, cursor))
    assert [u.id for u in rest.results] == [u.id for u in users.list_users(session, limit=None)[1]][
        2:
    ]


def courses_actor(user: Any) -> Any:
    from eduflow.services.permissions import Principal

    return Principal(id=user.id, username=user.username, role=Role(user.role))


def test_search_and_listings_use_their_indexes_on_postgresql(session: Any) -> None:
    _catalogue(session)
    session.execute(text("SET LOCAL enable_seqscan = off"))

    def plan(sql: str) -> str:
        return "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))

    assert "ix_courses_title_trgm" in plan(
        "SELECT id FROM courses WHERE title ILIKE '%ytho%' ESCAPE '\\' "
        "OR description ILIKE '%ytho%' ESCAPE '\\'"
    )
    # Enough accounts for the trigram index to beat walking every key of the covering one.
    session.execute(
        text(
            "INSERT INTO users (username, email, password_hash, role, is_active, auth_version,"
            " date_joined, full_name, email_verified) SELECT 'bulk_' || n, 'bulk_' || n ||"
            " '@example.org', 'x', 'student', true, 1, now(), '', false"
            " FROM generate_series(1, 3000) AS n"
        )
    )
    session.execute(text("SELECT gin_clean_pending_list('ix_users_search_key_trgm')"))
    session.execute(text("ANALYZE users"))
    assert "ix_users_search_key_trgm" in plan(
        "SELECT id FROM users WHERE search_key LIKE lower('%Student\\_3%') ESCAPE '\\'"
    )
    assert "ix_courses_published_price_id" in plan(
        "SELECT id FROM courses WHERE is_published ORDER BY price DESC, id DESC LIMIT 21"
    )
    assert "ix_enrollments_created_id" in plan(
        "SELECT id FROM enrollments ORDER BY created_at DESC, id DESC LIMIT 21"
    )


def test_a_searched_count_leaves_the_planner_settings_as_they_were(session: Any) -> None:
    # The count of a search turns sequential and index scans off for itself only: the
    # rest of the transaction plans as before, whatever the settings were.
    _catalogue(session)

    def settings() -> list[str]:
        return [session.execute(text(f"SHOW {name}")).scalar_one() for name in paging._SCANS]

    assert settings() == ["on", "on"]
    page = users.users_page(session, search="student_")
    assert page.count == 7 and settings() == ["on", "on"]
    session.execute(text("SET LOCAL enable_indexscan = off"))
    users.users_page(session, search="student_")
    assert settings() == ["on", "off"]
    # A text without a word of three letters or digits has no trigram to look up: the
    # planner keeps its own choice (the table's scan) and nothing is set.
    with counted_queries() as statements:
        short = courses.courses_page(session, None, CourseFilters(search="Py"))
    assert short.count == 5
    assert not [s for s in statements if "set_config" in s]
    with counted_queries() as statements:
        courses.courses_page(session, None, CourseFilters(search=" pyth "))
    assert len([s for s in statements if "set_config" in s]) == 2


def test_a_search_counts_exactly_up_to_its_own_smaller_limit(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalogue(session)
    every = sorted(
        c.id
        for c in courses.list_courses(session, None, CourseFilters(search="python"), limit=None)[1]
    )
    assert len(every) == 5
    monkeypatch.setattr(paging, "SEARCH_COUNT_EXACT_LIMIT", 3)
    page = courses.courses_page(session, None, CourseFilters(search="python"))
    assert page.count_exact is False and page.count >= 4
    assert sorted(c.id for c in page.results) == every  # the page itself is never estimated
    listed = courses.courses_page(session, None)  # no search: the listing's own limit
    assert listed.count_exact is True
    people = users.users_page(session, search="student_")
    assert (people.count_exact, len(people.results)) == (False, 7)


# Usernames and addresses whose joins tempt a key search to match across the two columns.
KEY_USERS = (("Bob", "bob@b.org"), ("ann_b", "o.b@ann.io"), ("X.Y_z", "b@x.y"), ("b", "bo@bob.b"))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        # pieces of the joined texts, the space between the columns included
        st.builds(
            lambda joined, start, size: joined[start : start + size],
            st.sampled_from(
                [f"{u} {e}".swapcase() for u, e in KEY_USERS] + [f"{u} {e}" for u, e in KEY_USERS]
            ),
            st.integers(0, 12),
            st.integers(1, 6),
        ),
        st.text(alphabet="bBoaN_.@ %\\x", min_size=1, max_size=4),
    )
)
def test_the_search_key_finds_what_an_ilike_per_column_finds(session: Any, term: str) -> None:
    """``users.search_key`` (one LIKE on ``lower(username || ' ' || email)``) answers
    every text as ``ILIKE`` on each column would, spaces and wildcards included."""
    if session.execute(select(col(User.id)).where(col(User.username) == "Bob")).first() is None:
        for username, email in KEY_USERS:
            make_user(session, username=username, email=email)
    pattern = paging.like_pattern(term.strip())
    expected = session.execute(
        select(col(User.id))
        .where(
            or_(
                col(User.username).ilike(pattern, escape="\\"),
                col(User.email).ilike(pattern, escape="\\"),
            )
        )
        .order_by(col(User.id))
    ).scalars()
    found = users.users_page(session, search=term, request=PageRequest(limit=None))
    assert [u.id for u in found.results] == list(expected)
