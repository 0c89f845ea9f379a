"""The embedded job runner: without Redis, a thread of the server process runs the outbox.

Same rows, same task functions as under RQ; retries follow ``EDUFLOW_JOB_RETRY_INTERVALS``.
A row is marked relayed once its task succeeded. A row whose retries are exhausted stays in
the outbox (visible as backlog) and is tried again when the server restarts.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

from eduflow.jobs.outbox import TASKS, job_id_for, wake_embedded
from eduflow.logging import bind_context, clear_context, get_logger
from eduflow.tracing import job_span

log = get_logger("eduflow.jobs.embedded")


def resolve_task(job_name: str) -> Callable[..., Any]:
    """The task function behind a job name."""
    module_name, _, attr = TASKS[job_name].rpartition(".")
    fn: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return fn


class EmbeddedRunner:
    """A daemon thread that polls the outbox (and wakes right after commits)."""

    def __init__(self, poll_interval: float = 2.0, batch: int = 50) -> None:
        self.poll_interval = poll_interval
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._not_before: dict[int, float] = {}
        self._given_up: set[int] = set()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="eduflow-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop after the current job, and wait for it."""
        self._stop.set()
        wake_embedded.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("embedded_runner_error")
                worked = 0
            if not worked:
                wake_embedded.wait(self.poll_interval)
                wake_embedded.clear()

    def run_once(self) -> int:
        """Run the due rows of the outbox once; returns how many ran."""
        from sqlmodel import col, select

        from eduflow.db import session_scope
        from eduflow.models.outbox import OutboxJob

        now = time.monotonic()
        with session_scope() as session:
            rows = session.exec(
                select(OutboxJob)
                .where(col(OutboxJob.relayed_at).is_(None))
                .order_by(col(OutboxJob.id))
                .limit(self.batch + len(self._given_up))
            ).all()
        due = [
            r
            for r in rows
            if r.id not in self._given_up and self._not_before.get(r.id or 0, 0) <= now
        ]
        for row in due[: self.batch]:
            if self._stop.is_set():
                break
            self._run(row)
        return len(due)

    def _run(self, row: Any) -> None:
        from sqlalchemy import update
        from sqlmodel import col

        from eduflow.config import get_settings
        from eduflow.db import session_scope
        from eduflow.models._base import utcnow
        from eduflow.models.outbox import OutboxJob

        bind_context(job_id=job_id_for(row.id), request_id=row.request_id)
        ok = False
        try:
            if row.job_name not in TASKS:
                log.error("job_unknown", job_name=row.job_name)
            else:
                with job_span(row.job_name, job_id_for(row.id), row.trace_context):
                    resolve_task(row.job_name)(**row.args)
            ok = True
        except Exception as exc:
            intervals = get_settings().job_retry_intervals
            tries = row.attempts + 1
            if tries > len(intervals):
                self._given_up.add(row.id)
                log.error("job_failed", job_name=row.job_name, tries=tries, error=repr(exc))
            else:
                self._not_before[row.id] = time.monotonic() + intervals[tries - 1]
                log.warning(
                    "job_retry_scheduled", job_name=row.job_name, tries=tries, error=repr(exc)
                )
        finally:
            clear_context()
        values: dict[str, Any] = {"attempts": OutboxJob.attempts + 1}
        if ok:
            values["relayed_at"] = utcnow()
            self._not_before.pop(row.id, None)
        with session_scope() as session:
            session.execute(update(OutboxJob).where(col(OutboxJob.id) == row.id).values(**values))
        if ok:
            log.info("job_done", job_name=row.job_name)


_runner: EmbeddedRunner | None = None


def start_embedded_runner() -> EmbeddedRunner:
    """Start the process's runner (server lifespan, embedded mode only)."""
    global _runner
    if _runner is None:
        _runner = EmbeddedRunner()
    _runner.start()
    return _runner


def stop_embedded_runner() -> None:
    """Stop the process's runner, letting the current job finish."""
    global _runner
    if _runner is not None:
        _runner.stop()
        _runner = None
