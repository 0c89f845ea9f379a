"""The ceiling: a minimal ASGI app answering fixed bytes: the body in the
``CEILING_BODY`` file and the headers listed in the ``CEILING_HEADERS`` JSON file (a
copy of a real answer's, ``X-Request-ID`` and ``X-Response-Time-ms`` included), or just
content type and length without it.

Served by ``bench/run.py`` under the same uvicorn settings as ``eduflow serve``; no
framework, no middleware, no work per request: what a Python server on this machine can
do at best with the same response.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["CEILING_BODY"]).read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
if os.environ.get("CEILING_HEADERS"):
    HEADERS = [
        (name.encode(), value.encode())
        for name, value in json.loads(Path(os.environ["CEILING_HEADERS"]).read_text())
    ]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with the same bytes."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
