"""A typed client generated from the OpenAPI document (openapi-python-client) works against
a live server: a student registers, logs in, lists the courses and enrolls.

The client is generated into the test's temporary directory from the document the server
serves, so it follows the routes as they are; no generated code is kept in the repository.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from eduflow.models.users import Role
from tests.factories import make_course, make_user

PACKAGE = "eduflow_client"
# A PDF is binary content like any other to the generator (it knows octet-stream by name).
CONFIG = f"""project_name_override: eduflow-client
package_name_override: {PACKAGE}
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
"""


def _generate(base_url: str, where: Path) -> Any:
    """Generate the client package from ``base_url``'s document and import it."""
    with urllib.request.urlopen(f"{base_url}/api/schema/", timeout=10) as response:
        (where / "schema.json").write_bytes(response.read())
    (where / "config.yml").write_text(CONFIG)
    generator = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(
        [
            str(generator),
            "generate",
            "--path=schema.json",
            "--config=config.yml",
            "--meta=none",
            f"--output-path={PACKAGE}",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Every operation made it into the client: no warning about a part left out.
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


@pytest.fixture
def generated() -> Any:
    """Forget the generated modules after the test."""
    yield
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_generated_client_registers_logs_in_lists_and_enrolls(
    live_server: Any, session: Any, tmp_path: Path, generated: Any
) -> None:
    teacher = make_user(session, Role.instructor, username="gc_teacher")
    course = make_course(session, owner=teacher, title="Typed clients", capacity=10)
    make_course(session, owner=teacher, title="Hidden draft", is_published=False)
    session.commit()

    client_package = _generate(live_server.url, tmp_path)
    models = importlib.import_module(f"{PACKAGE}.models")
    # One module per operation, named by its operation id, under its tag.
    register = importlib.import_module(f"{PACKAGE}.api.auth.auth_register")
    login = importlib.import_module(f"{PACKAGE}.api.auth.auth_login")
    me_get = importlib.import_module(f"{PACKAGE}.api.auth.auth_me_get")
    courses_list = importlib.import_module(f"{PACKAGE}.api.courses.courses_list")
    enrollments_create = importlib.import_module(f"{PACKAGE}.api.enrollments.enrollments_create")

    anonymous = client_package.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    user = register.sync(
        client=anonymous,
        body=models.UserCreate(username="gc_ada", email="ada@example.com", password="engine-1843"),
    )
    assert isinstance(user, models.UserPublic), user
    assert user.username == "gc_ada" and user.role == models.Role.STUDENT

    # A wrong password is a typed problem, not an exception or a raw dict.
    refused = login.sync(
        client=anonymous, body=models.LoginRequest(username="gc_ada", password="wrong-pass-1")
    )
    assert isinstance(refused, models.Problem) and refused.status == 401

    tokens = login.sync(
        client=anonymous, body=models.LoginRequest(username="gc_ada", password="engine-1843")
    )
    assert isinstance(tokens, models.TokenPair), tokens
    student = client_package.AuthenticatedClient(
        base_url=live_server.url, token=tokens.access, raise_on_unexpected_status=True
    )
    me = me_get.sync(client=student)
    assert isinstance(me, models.UserPublic) and me.id == user.id

    page = courses_list.sync(client=student)
    assert isinstance(page, models.CoursePage), page
    assert [c.title for c in page.results] == ["Typed clients"]
    listed = page.results[0]
    assert listed.id == course.id and listed.price == "0.00" and listed.owner == "gc_teacher"

    enrollment = enrollments_create.sync(
        client=student, body=models.EnrollmentCreate(course=listed.id)
    )
    assert isinstance(enrollment, models.EnrollmentPublic), enrollment
    assert enrollment.course == course.id and enrollment.status.value == "active"

    again = enrollments_create.sync_detailed(
        client=student, body=models.EnrollmentCreate(course=listed.id)
    )
    assert again.status_code == 409
    assert isinstance(again.parsed, models.Problem)
    assert json.loads(again.content)["type"].endswith("/already-enrolled")
