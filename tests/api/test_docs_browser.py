"""The API docs as a person sees them: headless Chromium opens /api/docs/ and /api/redoc/ on
a live server, with every host but loopback unresolvable, and the rendered DOM must list
every operation of the OpenAPI document. The Swagger UI screenshot is kept under
build/screenshots/ for a look."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
# Every name resolves to nothing except loopback: a page that needs a CDN renders empty.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is needed (.ci/run installs it: apt-get install chromium)")
    return found


def _browse(url: str, *extra: str) -> str:
    """Run headless Chromium on ``url`` until the page's scripts are done; its stdout."""
    with tempfile.TemporaryDirectory(prefix="eduflow-chromium-") as profile:
        done = subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                LOOPBACK_ONLY,
                "--virtual-time-budget=20000",
                *extra,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Operations(HTMLParser):
    """(METHOD, path) of every operation block Swagger UI rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._method: str | None = None
        self._in_method = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._in_method = True
        elif "opblock-summary-path" in classes and self._method is not None:
            self.found.append((self._method, str(values.get("data-path"))))
            self._method = None

    def handle_data(self, data: str) -> None:
        if self._in_method:
            self._method = data.strip().upper()
            self._in_method = False


def _schema_operations(url: str) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    schema = httpx.get(url + "/api/schema/").json()
    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }
    return operations, schema


def test_swagger_ui_renders_every_operation_in_a_real_browser(live_server: Any) -> None:
    expected, schema = _schema_operations(live_server.url)
    assert len(expected) >= 20
    dom = _browse(live_server.url + "/api/docs/", "--dump-dom")
    assert "Unable to render this definition" not in dom
    assert "errors-wrapper" not in dom  # Swagger UI's box of schema errors
    parser = _Operations()
    parser.feed(dom)
    assert set(parser.found) == expected
    assert len(parser.found) == len(expected)  # each operation once
    # The readable operation ids are shown next to each operation.
    ids = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    for operation_id in ids:
        assert f">{operation_id}</span>" in dom, operation_id
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "swagger-ui.png"
    shot.unlink(missing_ok=True)
    height = 400 + 64 * len(expected) + 90 * len(schema.get("tags", []))
    _browse(live_server.url + "/api/docs/", f"--window-size=1280,{height}", f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")


def test_redoc_renders_every_operation_in_a_real_browser(live_server: Any) -> None:
    expected, schema = _schema_operations(live_server.url)
    dom = _browse(live_server.url + "/api/redoc/", "--dump-dom")
    assert "Something went wrong" not in dom
    for item in schema["paths"].values():
        for op in item.values():
            # ReDoc anchors each operation as tag/<tag>/operation/<operationId>.
            assert f'operation/{op["operationId"]}"' in dom, op["operationId"]
    assert len(expected) >= 20
