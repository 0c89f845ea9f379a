"""The paths the fast paths answer, in one module: the routers are mounted under
``API_PREFIX`` and the fast paths match these (``tests/api/test_fast_path_guard.py`` checks
that each names a route of the application)."""

API_PREFIX = "/api/v1"
COURSES_PATH = f"{API_PREFIX}/courses/"
COURSE_ROUTE = COURSES_PATH + "{course_id}/"
LESSONS_PATH = f"{API_PREFIX}/lessons/"
ME_PATH = f"{API_PREFIX}/auth/me/"
ENROLL_PATH = f"{API_PREFIX}/enrollments/"
PROGRESS_ROUTE = ENROLL_PATH + "{enrollment_id}/progress/"

# What the fast paths stand in for: for each route they answer in front of the
# application, the dependencies that route runs (by name; ``HTTPBearer`` only declares
# the scheme in OpenAPI) and the middleware around it. The fast paths do the same work
# with the same functions (credentials reader, permission rules, request context, problem
# renderer); a dependency or middleware added to one of these routes must be taught to
# them too, and ``tests/api/test_fast_path_guard.py`` fails until it is.
FAST_PATHED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", COURSES_PATH): frozenset(
        {"HTTPBearer", "get_optional_principal", "get_listing_params"}
    ),
    ("GET", COURSE_ROUTE): frozenset({"HTTPBearer", "get_optional_principal"}),
    ("GET", LESSONS_PATH): frozenset({"HTTPBearer", "get_optional_principal", "get_page_params"}),
    ("GET", ME_PATH): frozenset(
        {"HTTPBearer", "get_optional_principal", "get_principal", "get_session"}
    ),
    ("POST", ENROLL_PATH): frozenset(
        {"HTTPBearer", "get_optional_principal", "get_principal", "idempotency"}
    ),
    ("POST", PROGRESS_ROUTE): frozenset(
        {"HTTPBearer", "get_optional_principal", "get_principal", "idempotency", "get_session"}
    ),
}
KNOWN_MIDDLEWARE = ("RequestContextMiddleware",)
