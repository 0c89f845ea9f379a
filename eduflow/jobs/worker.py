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

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
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
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
JOB_BEAT_EVERY = 2.0  # seconds between heartbeats of a running job
JOB_BEAT_TTL = 8  # seconds a running job's registry entry outlives its last heartbeat


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
        self._last_redis_warning = float("-inf")
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
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(None, pipe)
                pipe.execute()
        except _REDIS_DOWN as exc:
            self._redis_down("heartbeat", exc)

    # RQ's loop quits the worker on any Redis error outside its dequeue (a heartbeat, the
    # suspension check, maintenance, a job's bookkeeping). A worker must outlive a Redis
    # outage instead: these steps are skipped while Redis is away. A job whose bookkeeping
    # was lost is found abandoned later and retried; its task's marker makes that harmless.

    def set_state(self, state: Any, pipeline: Any = None) -> None:
        """RQ's state record, skipped while Redis is away."""
        try:
            super().set_state(state, pipeline)
        except _REDIS_DOWN as exc:
            self._redis_down("set_state", exc)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check, skipped while Redis is away."""
        try:
            super().check_for_suspension(burst)
        except _REDIS_DOWN as exc:
            self._redis_down("suspension_check", exc)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry clean-up, skipped while Redis is away."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except _REDIS_DOWN as exc:
            self._redis_down("maintenance", exc)

    def execute_job(self, job: Any, queue: Any) -> None:
        """Run a job; Redis failing around it (bookkeeping) does not stop the worker."""
        try:
            super().execute_job(job, queue)
        except _REDIS_DOWN as exc:
            self._redis_down("job_bookkeeping", exc)

    def teardown(self) -> None:
        """Leave politely: QUIT the SMTP session kept open across jobs; unregister if Redis
        answers."""
        from eduflow.jobs.mailer import close_connections

        close_connections()
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        except _REDIS_DOWN as exc:
            self._redis_down("teardown", exc)

    def _redis_down(self, step: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_redis_warning > 5.0:  # a line every few seconds of an outage
            self._last_redis_warning = now
            log.warning("worker_redis_unavailable", step=step, error=str(exc)[:200])
        time.sleep(1.0)

    # Redis gone: retry every second or two, not with RQ's backoff up to a minute.
    max_connection_wait_time = 2.0

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        """Seconds the running job's entry in the started registry lives without a beat.

        ``perform_job`` renews it every ``JOB_BEAT_EVERY`` seconds while the job runs, so a
        killed worker's job is found abandoned (and retried) seconds after its death, not
        after the job's whole timeout.
        """
        return JOB_BEAT_TTL

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        """Run one job with ``job_id`` and the originating ``request_id`` bound to its logs."""
        meta = job.meta or {}
        bind_context(
            job_id=job.id, request_id=meta.get("request_id"), job_name=meta.get("job_name")
        )
        beating = threading.Event()
        beat = threading.Thread(
            target=self._beat_while_running,
            args=(job, execution, beating),
            name="eduflow-job-heartbeat",
            daemon=True,
        )
        beat.start()
        try:
            name = meta.get("job_name") or job.func_name
            with job_span(name, job.id, meta.get("trace_context")):
                return bool(super().perform_job(job, queue, execution))
        finally:
            beating.set()
            beat.join(timeout=5)
            clear_context()

    def _beat_while_running(self, job: Any, execution: Any, done: threading.Event) -> None:
        """Keep the job's started-registry entry (and the worker's keys) alive while it runs."""
        while not done.wait(JOB_BEAT_EVERY):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception as exc:  # Redis away: the job goes on; its entry may lapse
                log.warning("job_heartbeat_failed", error=f"{type(exc).__name__}: {exc}"[:200])


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
    redis_down = False
    while not stop.wait(interval):
        try:
            sweep_outbox_once(client, interval)
        except _REDIS_DOWN as exc:  # one line per outage, not one traceback per sweep
            if not redis_down:
                log.warning("outbox_sweep_redis_unavailable", error=str(exc)[:200])
            redis_down = True
        except Exception:
            log.exception("outbox_sweep_failed")
        else:
            redis_down = False


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
    from eduflow.jobs.retries import RetryMover, run_retry_scheduler

    mover = RetryMover(client, queues)
    try:  # due retries first: a burst worker runs them in this pass
        mover.run_once()
    except Exception:
        log.exception("retry_scheduler_failed")
    threads.append(
        threading.Thread(
            target=run_retry_scheduler,
            args=(mover, stop),
            name="retry-scheduler",
            daemon=True,
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
            # Retries and scheduled jobs are moved by the thread above, not by RQ's scheduler
            # process (which dies with Redis and comes back a minute after it).
            worker = EduFlowWorker(queues, connection=client)
            worker.work(burst=burst, with_scheduler=False, logging_level=get_settings().log_level)
    except Exception:  # the reason a worker stops is a log line like any other (JSON)
        log.exception("worker_crashed")
        raise SystemExit(1) from None
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
