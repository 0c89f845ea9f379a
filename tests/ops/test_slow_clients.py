"""Drill: slow clients (a header line every 5 s) against the production proxy,
``deploy/nginx.conf`` in a real nginx in front of ``eduflow serve``.

Measured: nginx closes every slow connection once ``client_header_timeout`` has passed
(uvicorn alone keeps such a connection open), and a normal client is served meanwhile.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ops.stack import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = 200
LINE_EVERY_S = 5.0


def proxy_config(workdir: Path, listen: int, upstream: int) -> Path:
    """deploy/nginx.conf with the api containers' address replaced by the drill's server
    (``resolve`` and Docker's DNS exist only in the compose shape), inside a minimal
    main configuration."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"(?m)^resolver .*$", "", site)
    site = re.sub(r"server\s+api:8000[^;]*;", f"server 127.0.0.1:{upstream};", site)
    site = site.replace("listen 80 default_server;", f"listen 127.0.0.1:{listen};")
    site = site.replace("access_log /dev/stdout eduflow_json;", "access_log off;")
    assert f"127.0.0.1:{upstream}" in site and f"127.0.0.1:{listen}" in site
    temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    main = workdir / "nginx.conf"
    main.write_text(
        f"pid {workdir}/nginx.pid;\nerror_log {workdir}/error.log;\nworker_processes 1;\n"
        f"events {{ worker_connections 4096; }}\nhttp {{\n{temp}\n{site}\n}}\n"
    )
    return main


def slow_client(port: int) -> socket.socket:
    """A connection that has sent its request line and one header line, and no more yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: drill\r\n")
    return sock


def send_header_line(sock: socket.socket) -> None:
    """The next header line of a slow client (ignored once the server closed it)."""
    with contextlib.suppress(OSError):
        sock.sendall(b"X-Slow: 1\r\n")


def is_closed(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or a 408, then EOF)."""
    sock.settimeout(0)
    try:
        data = sock.recv(4096, socket.MSG_PEEK)
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_the_proxy_closes_slow_clients_and_keeps_serving(running_drill: dict[str, Any],
                                                         tmp_path: Path) -> None:  # fmt: skip
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is needed for the slow-client drill"
    server = running_drill["server"]
    upstream = int(server.url.rsplit(":", 1)[1])
    port = free_port()
    conf = proxy_config(tmp_path, port, upstream)
    proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
                             stderr=subprocess.PIPE)  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proxy.poll() is None, proxy.stderr.read() if proxy.stderr else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        header_timeout = int(re.search(r"client_header_timeout\s+(\d+)s;",
                                       conf.read_text()).group(1))  # type: ignore[union-attr]  # fmt: skip
        direct = slow_client(upstream)  # straight to uvicorn, for comparison
        started = time.monotonic()
        sockets = [slow_client(port) for _ in range(SLOW_CLIENTS)]
        served = []
        closed_at: dict[int, float] = {}
        next_line = started + LINE_EVERY_S
        while time.monotonic() - started < header_timeout + 2 * LINE_EVERY_S:
            for i, sock in enumerate(sockets):
                if i not in closed_at and is_closed(sock):
                    closed_at[i] = time.monotonic() - started
            if len(closed_at) == len(sockets):
                break
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            served.append(answer.status_code)
            time.sleep(LINE_EVERY_S / 5)
            if time.monotonic() >= next_line:  # the next header line, every 5 s
                next_line += LINE_EVERY_S
                for i, sock in enumerate(sockets):
                    if i not in closed_at:
                        send_header_line(sock)
        direct_open = not is_closed(direct)
        direct.close()
    finally:
        for sock in sockets:
            sock.close()
        proxy.terminate()
        proxy.wait(10)
    assert len(closed_at) == SLOW_CLIENTS, f"{SLOW_CLIENTS - len(closed_at)} still open"
    assert max(closed_at.values()) < header_timeout + LINE_EVERY_S, max(closed_at.values())
    assert served and set(served) == {200}, served
    assert direct_open, "uvicorn closed a slow client itself: the proxy is no longer needed"
    print(
        f"slow clients: {SLOW_CLIENTS} connections sending a header line every "
        f"{LINE_EVERY_S:.0f} s, all closed by nginx after {min(closed_at.values()):.1f} to "
        f"{max(closed_at.values()):.1f} s (client_header_timeout {header_timeout} s); "
        f"{len(served)} normal requests meanwhile, all 200; uvicorn alone kept its slow "
        f"client open for {time.monotonic() - started:.0f} s"
    )
