"""``eduflow cache``: inspect, empty and warm the response cache."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect, empty and warm the response cache.")

JSON_HELP = "Print JSON (for scripts)."
EMBEDDED_NOTE = (
    "no EDUFLOW_REDIS_URL: the cache lives inside the server process (embedded default), "
    "so there is nothing to inspect from here; restart the server to empty it"
)


def _redis_store() -> Any:
    """The Redis store, or a clear note (and exit) on the embedded default."""
    from eduflow.cache.health import get_cache_store
    from eduflow.cache.stores import RedisStore
    from eduflow.cli.output import err_console

    store = get_cache_store()
    if not isinstance(store, RedisStore):
        err_console.print(f"[yellow]{EMBEDDED_NOTE}[/]", highlight=False)
        raise typer.Exit(0)
    return store


def _unavailable(exc: Exception) -> Exception:
    from eduflow.errors import Unavailable

    return Unavailable(f"Redis does not answer ({exc}); check EDUFLOW_REDIS_URL")


def _full_key(name: str) -> str:
    from eduflow.cache.stores import PREFIX

    return name if name.startswith(PREFIX) else PREFIX + name


@app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Hits, misses, rebuilds and errors per namespace (all server processes), and key counts."""
    from eduflow.cache.health import STATS_KEY
    from eduflow.cache.responses import NAMESPACES
    from eduflow.cache.stores import PREFIX
    from eduflow.cli.output import emit

    store = _redis_store()
    try:
        raw = store.client.hgetall(STATS_KEY)
        keys = store.keys(PREFIX + "resp:")
        memory = store.client.info("memory").get("used_memory_human")
    except Exception as exc:
        raise _unavailable(exc) from exc
    figures: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        namespace, _, kind = field.decode().rpartition(":")
        figures.setdefault(namespace, {})[kind] = int(value)
    rows = []
    for namespace in sorted(set(NAMESPACES) | set(figures)):
        f = figures.get(namespace, {})
        hits, misses = f.get("hits", 0), f.get("misses", 0)
        rows.append(
            {
                "namespace": namespace,
                "hits": hits,
                "misses": misses,
                "hit_rate": f"{hits / (hits + misses) * 100:.1f}%" if hits + misses else "-",
                "rebuilds": f.get("rebuilds", 0),
                "errors": f.get("errors", 0),
                "keys": sum(1 for k in keys if k.startswith(f"{PREFIX}resp:{namespace}:")),
            }
        )
    if as_json:
        emit({"namespaces": rows, "redis_used_memory": memory}, True)
        return
    emit(rows, False, ["namespace", "hits", "misses", "hit_rate", "rebuilds", "errors", "keys"])
    typer.echo(f"Redis memory in use: {memory}")


@app.command("keys")
def keys(
    pattern: str = typer.Argument("", help="Key prefix after 'eduflow:' (e.g. resp:course)."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=100_000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List cache keys with their time to live and size."""
    from eduflow.cli.output import emit, show_more

    store = _redis_store()
    try:
        found = store.keys(_full_key(pattern))
        pipe = store.client.pipeline(transaction=False)
        for k in found[:limit]:
            pipe.pttl(k)
            pipe.memory_usage(k)
        replies = pipe.execute() if found else []
    except Exception as exc:
        raise _unavailable(exc) from exc
    rows = [
        {
            "key": k,
            "ttl_s": round(replies[2 * i] / 1000, 1) if replies[2 * i] >= 0 else None,
            "bytes": replies[2 * i + 1],
        }
        for i, k in enumerate(found[:limit])
    ]
    emit(rows, as_json, ["key", "ttl_s", "bytes"])
    if not as_json:
        show_more(len(rows), len(found))


@app.command("get")
def get(
    name: str = typer.Argument(..., help="The key (with or without the 'eduflow:' prefix)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one key; a cached response shows its ETag, whether it is current, and its body."""
    import json

    from eduflow.cache.responses import Entry, tag_of
    from eduflow.errors import NotFound

    store = _redis_store()
    full = _full_key(name)
    try:
        raw = store.get(full)
        ttl = store.ttl(full)
    except Exception as exc:
        raise _unavailable(exc) from exc
    if raw is None:
        raise NotFound(f"no key {full!r} (see `eduflow cache keys`)")
    record: dict[str, Any] = {"key": full, "ttl_s": round(ttl, 1) if ttl else None}
    entry = Entry.decode(raw) if full.startswith("eduflow:resp:") else None
    if entry is not None:
        current = tag_of(store.mget(*entry.deps)) == entry.tag
        try:
            body: Any = json.loads(entry.body)
        except ValueError:
            body = entry.body.decode(errors="replace")
        record |= {
            "etag": entry.etag.decode(),
            "current": current,
            "depends_on": list(entry.deps),
            "bytes": len(entry.body),
            "body": body,
        }
    else:
        record["value"] = raw.decode(errors="replace")
    if as_json:
        from eduflow.cli.output import print_json

        print_json(record)
        return
    from eduflow.cli.output import print_record

    if "body" in record:
        record["body"] = json.dumps(record["body"])[:400]
    print_record(record)


@app.command("flush")
def flush(
    prefix: str = typer.Option(
        "resp:", "--prefix", help="Only keys under 'eduflow:' + this prefix (default: responses)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete cached keys (by default every cached response) and retire the current entries."""
    from eduflow.cache.generations import GEN_CATALOG, GEN_EPOCH, replace_generations
    from eduflow.cli.output import confirm_or_abort, success, track

    store = _redis_store()
    full = _full_key(prefix)
    try:
        found = store.keys(full)
    except Exception as exc:
        raise _unavailable(exc) from exc
    confirm_or_abort(f"Delete {len(found)} keys under {full!r}?", yes)
    batches = [found[i : i + 500] for i in range(0, len(found), 500)]
    try:
        for batch in track(batches, "Deleting", total=len(batches)):
            store.delete(*batch)
        if full.startswith(("eduflow:resp", "eduflow:gen")) or "eduflow:resp:".startswith(full):
            replace_generations(store, GEN_EPOCH, GEN_CATALOG)  # nothing older is served
    except Exception as exc:
        raise _unavailable(exc) from exc
    success(f"deleted {len(found)} keys under {full!r}")


@app.command("warm")
def warm(
    pages: int = typer.Option(5, "--pages", min=1, max=100, help="Course list pages to build."),
) -> None:
    """Pre-build the first course list pages, those courses and their lesson lists.

    One entry serves every client, whatever Host it asks (links come from
    EDUFLOW_PUBLIC_BASE_URL); the requests it makes write no access-log lines.
    """
    import asyncio
    import logging

    from eduflow.api.app import create_app
    from eduflow.cli.output import success, track
    from eduflow.config import get_settings
    from eduflow.logging import configure_logging

    _redis_store()
    application = create_app()
    # Warnings and errors still show; the access line of every warming request does not.
    level = max(logging.WARNING, logging.getLevelName(get_settings().log_level))
    configure_logging(level=logging.getLevelName(level))

    async def fetch(path: str, query: str = "") -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 0),
            "server": ("localhost", 80),
        }
        status, chunks = 0, []

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await application(scope, receive, send)
        return status, b"".join(chunks)

    async def run() -> int:
        import json

        built = 0
        course_ids: list[int] = []
        for page in track(range(1, pages + 1), "Course pages", total=pages):
            status, body = await fetch("/api/v1/courses/", "" if page == 1 else f"page={page}")
            if status != 200:
                break
            built += 1
            data = json.loads(body)
            course_ids += [c["id"] for c in data["results"]]
            if not data["next"]:
                break
        for course_id in track(course_ids, "Courses and lessons", total=len(course_ids)):
            for path, query in (
                (f"/api/v1/courses/{course_id}/", ""),
                ("/api/v1/lessons/", f"course={course_id}"),
            ):
                status, _ = await fetch(path, query)
                built += status == 200
        return built

    try:
        built = asyncio.run(run())
    finally:
        configure_logging()  # back to the configured level (in-process callers)
    success(f"{built} responses cached")
