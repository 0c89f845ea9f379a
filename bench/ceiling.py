"""The ceiling: a minimal ASGI app answering fixed JSON bytes (``CEILING_BODY`` file).

Served by ``bench/run.py`` under the same uvicorn settings as ``eduflow serve``; no
framework, no middleware: what a Python server on this machine can do at best.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["CEILING_BODY"]).read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with the same bytes."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
