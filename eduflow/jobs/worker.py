"""Worker construction: an RQ worker whose logs carry ``job_id`` and ``request_id``, the
outbox sweep, and the optional periodic scheduler."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from rq.worker import SimpleWorker

from eduflow.config import get_settings, reveal
from eduflow.logging import bind_context, clear_context, get_logger
from eduflow.tracing import configure as configure_tracing
from eduflow.tracing import job_span

if TYPE_CHECKING:
    import redis

log = get_logger("eduflow.jobs.worker")
SWEEP_LOCK = "outbox-sweep"
_PR_SET_PDEATHSIG = 1
_IDLE_BEAT_EVERY = 1.0  # seconds; the worker key lives for worker_ttl + 60 s


def worker_connection() -> redis.Redis:
    """A Redis client for workers: no short socket timeout (workers block on BLPOP)."""
    import redis as redis_lib

    from eduflow.errors import EduFlowError

    url = reveal(get_settings().redis_url)
    if not url:
        raise EduFlowError(
            "the worker needs EDUFLOW_REDIS_URL; without Redis, jobs run inside `eduflow serve`"
        )
    client: redis.Redis = redis_lib.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        from eduflow.errors import Unavailable

        raise Unavailable(f"Redis at EDUFLOW_REDIS_URL does not answer: {exc}") from exc
    return client


class EduFlowWorker(SimpleWorker):  # type: ignore[misc]
    """Runs jobs in-process (no fork per job); SIGTERM finishes the current job, then exits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", get_settings().worker_maintenance_interval)
        self._last_idle_beat = float("-inf")
        super().__init__(*args, **kwargs)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """Start clean after a fork (worker pools): no pooled connection shared with the parent."""
        _forget_inherited_connections()
        super().bootstrap(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        """Wake up from BLPOP often enough to run maintenance (reclaiming a dead worker's job)."""
        return max(1, min(int(self.worker_ttl) - 15, int(self.maintenance_interval)))

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Refresh the worker's keys in one round trip, at most once a second between jobs.

        RQ calls this three times around every job, three commands each; the keys live for
        minutes, so a burst of short jobs need not pay nine round trips per job. Heartbeats
        with an explicit TTL or inside a pipeline (job start, monitoring) always go through.
        """
        if timeout is not None or pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        beat = time.monotonic()
        if beat - self._last_idle_beat < _IDLE_BEAT_EVERY:
            return
        self._last_idle_beat = beat
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(None, pipe)
            pipe.execute()

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        """A job cannot outlive its timeout here, so a dead worker's job is reclaimed soon after
        (RQ's default adds a fixed minute)."""
        timeout = job.timeout if job.timeout and job.timeout > 0 else get_settings().job_timeout
        return int(timeout) + 10

    def teardown(self) -> None:
        """Leave politely: QUIT the SMTP session kept open across jobs."""
        from eduflow.jobs.mailer import close_connections

        close_connections()
        super().teardown()  # type: ignore[no-untyped-call]

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        """Run one job with ``job_id`` and the originating ``request_id`` bound to its logs."""
        meta = job.meta or {}
        bind_context(
            job_id=job.id, request_id=meta.get("request_id"), job_name=meta.get("job_name")
        )
        try:
            name = meta.get("job_name") or job.func_name
            with job_span(name, job.id, meta.get("trace_context")):
                return bool(super().perform_job(job, queue, execution))
        finally:
            clear_context()


_forking_pid = 0


def _children_exit_with_worker() -> None:
    """Processes this worker forks (RQ's scheduler, pool workers) get SIGTERM when it dies.

    Without this, a worker killed with SIGKILL leaves its scheduler process running forever.
    Linux only (``PR_SET_PDEATHSIG``); elsewhere children outlive a killed worker as before.
    """

    def before() -> None:
        global _forking_pid
        _forking_pid = os.getpid()

    def in_child() -> None:
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != _forking_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    if sys.platform.startswith("linux"):
        os.register_at_fork(before=before, after_in_child=in_child)


def _forget_inherited_connections() -> None:
    from eduflow import db
    from eduflow.cache.stores import reset_store

    with db._lock:
        for engine in db._engines.values():
            engine.dispose(close=False)  # never close the parent's sockets
        db._engines.clear()
    reset_store()


def serve_metrics() -> None:
    """Serve this process's /metrics on ``EDUFLOW_METRICS_PORT`` (a thread), when set."""
    port = get_settings().metrics_port
    if port:
        from prometheus_client import start_http_server

        import eduflow.metrics  # noqa: F401  (every declared series, scrape-time gauges included)

        start_http_server(port)
        log.info("metrics_serving", port=port)


def sweep_outbox_once(client: redis.Redis, interval: float) -> None:
    """One guarded sweep: only one worker per interval walks the outbox."""
    from eduflow.cache.stores import key
    from eduflow.jobs.outbox import relay_pending

    if not client.set(key("jobs", "lock", SWEEP_LOCK), b"1", nx=True, px=int(interval * 1000)):
        return
    result = relay_pending()
    if result.relayed or result.errors or result.pruned:
        log.info(
            "outbox_swept",
            relayed=result.relayed,
            duplicates=result.duplicates,
            pruned=result.pruned,
            errors=result.errors[:5],
        )


def _sweep_loop(client: redis.Redis, stop: threading.Event) -> None:
    interval = get_settings().outbox_sweep_interval
    while not stop.wait(interval):
        try:
            sweep_outbox_once(client, interval)
        except Exception:
            log.exception("outbox_sweep_failed")


def run_worker(
    queues: list[str],
    *,
    burst: bool = False,
    with_scheduler: bool = False,
    concurrency: int = 1,
) -> None:
    """``eduflow worker``: sweep the outbox, then work the queues until stopped (or empty)."""
    from eduflow.logging import configure_logging

    configure_logging()
    configure_tracing("eduflow-worker")
    serve_metrics()
    _children_exit_with_worker()
    client = worker_connection()
    stop = threading.Event()
    # A first sweep hands over whatever was left behind (e.g. while Redis was down).
    try:
        from eduflow.jobs.outbox import relay_pending

        result = relay_pending()
        log.info("outbox_swept", relayed=result.relayed, duplicates=result.duplicates)
    except Exception:
        log.exception("outbox_sweep_failed")
    threads: list[threading.Thread] = []
    if not burst:
        threads.append(
            threading.Thread(
                target=_sweep_loop, args=(client, stop), name="outbox-sweep", daemon=True
            )
        )
    if with_scheduler:
        from eduflow.jobs.scheduler import run_scheduler

        threads.append(
            threading.Thread(target=run_scheduler, args=(client, stop), name="cron", daemon=True)
        )
    for thread in threads:
        thread.start()
    log.info("worker_starting", queues=queues, burst=burst, concurrency=concurrency)
    try:
        if concurrency > 1:
            from rq.worker_pool import WorkerPool

            pool = WorkerPool(
                queues, connection=client, num_workers=concurrency, worker_class=EduFlowWorker
            )
            pool.start(burst=burst, logging_level=get_settings().log_level)
        else:
            worker = EduFlowWorker(queues, connection=client)
            worker.work(burst=burst, with_scheduler=True, logging_level=get_settings().log_level)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def run_standalone_scheduler() -> None:
    """``eduflow scheduler``: only the periodic jobs; SIGTERM/SIGINT stop it cleanly."""
    from eduflow.logging import configure_logging

    configure_logging()
    configure_tracing("eduflow-scheduler")
    serve_metrics()
    client = worker_connection()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from eduflow.jobs.scheduler import run_scheduler

    run_scheduler(client, stop)
