"""Operations: readiness, metrics, the OpenAPI document and the offline Swagger UI."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tests.conftest import free_port, reset_process_state


def test_readyz_is_200_when_database_and_redis_answer(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_names_redis_when_it_is_down(client: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "Not ready: redis unavailable"


def test_readyz_names_the_database_when_it_is_down(client: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    reset_process_state()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "Not ready: database unavailable"
    assert response.json()["type"].endswith("/service-unavailable")


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(client: Any) -> None:
    before = client.get("/metrics").text
    route = "/api/v1/users/{user_id}/"
    base = _sample(before, "eduflow_http_requests_total", route=route, status="401")
    for user_id in (1, 2, 3):
        assert client.get(f"/api/v1/users/{user_id}/").status_code == 401
    client.get("/no/such/path/at/all")
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert _sample(text, "eduflow_http_requests_total", route=route, status="401") == base + 3
    assert _sample(text, "eduflow_http_request_duration_seconds_count", route=route) >= 3
    assert "/no/such/path/at/all" not in text  # raw paths never become labels
    assert _sample(text, "eduflow_http_requests_total", route="<unmatched>", status="404") >= 1
    assert _sample(text, "eduflow_http_requests_total", route="/metrics", status="200") >= 1
    client.get("/api/schema/")
    text = client.get("/metrics").text
    assert _sample(text, "eduflow_http_requests_total", route="/api/schema/", status="200") >= 1


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))


def test_swagger_ui_works_offline(client: Any) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    parser = _AssetParser()
    parser.feed(page.text)
    assert any(u.endswith(".js") for u in parser.urls)
    assert any(u.endswith(".css") for u in parser.urls)
    for url in parser.urls:
        assert url.startswith("/"), f"{url} is not served by EduFlow"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url
    assert "url: '/api/schema/'" in page.text
    assert client.get("/api/schema/").status_code == 200
    # Nothing else of the bundle directory is reachable.
    assert client.get("/api/docs/static/index.html").status_code == 404
    assert client.get("/api/docs/static/..%2F__init__.py").status_code == 404


def test_openapi_documents_auth_with_examples_and_bearer_scheme(client: Any) -> None:
    schema = client.get("/api/schema/").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in [
        "/api/v1/auth/register/",
        "/api/v1/auth/login/",
        "/api/v1/auth/refresh/",
        "/api/v1/auth/logout/",
        "/api/v1/auth/me/",
        "/api/v1/users/",
        "/api/v1/users/{user_id}/",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from /api/v1/auth/login/",
    }
    assert paths["/api/v1/auth/me/"]["get"]["security"] == [{"HTTPBearer": []}]
    components = schema["components"]["schemas"]
    for name in ("UserCreate", "TokenPair", "LoginRequest", "UserPublic", "Problem"):
        assert components[name].get("examples"), name
    register_422 = paths["/api/v1/auth/register/"]["post"]["responses"]["422"]
    assert "application/problem+json" in register_422["content"]
    assert "HTTPValidationError" not in components
    login_429 = paths["/api/v1/auth/login/"]["post"]["responses"]["429"]
    assert "Retry-After" in login_429["headers"]


def test_api_docs_can_be_turned_off(monkeypatch: Any) -> None:
    from fastapi.testclient import TestClient

    from eduflow.api.app import create_app
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_API_DOCS", "false")
    reset_settings()
    with TestClient(create_app()) as client:
        for path in (
            "/api/docs/",
            "/api/redoc/",
            "/api/schema/",
            "/api/docs/static/swagger-ui.css",
        ):
            assert client.get(path).status_code == 404, path
        assert client.get("/healthz").status_code == 200
