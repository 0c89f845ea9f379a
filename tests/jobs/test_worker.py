"""The worker process: heartbeats that cost one round trip, no orphans after a SIGKILL, retries
moved by a thread."""

from __future__ import annotations

import signal

from tests.jobs.conftest import spawn_worker, wait_for


def test_idle_heartbeats_are_batched_and_spaced_but_job_heartbeats_always_go_through() -> None:
    from eduflow.cache.stores import get_redis
    from eduflow.jobs.worker import EduFlowWorker, worker_connection

    worker = EduFlowWorker(["default"], connection=worker_connection())
    client = get_redis()
    worker.heartbeat()
    assert client.hget(worker.key, "last_heartbeat")
    assert client.ttl(worker.key) > worker.worker_ttl  # the key outlives many skipped beats

    client.hdel(worker.key, "last_heartbeat")
    worker.heartbeat()  # right after the previous one: skipped
    assert client.hget(worker.key, "last_heartbeat") is None

    worker.heartbeat(30)  # an explicit TTL (job start, monitoring) is never skipped
    assert client.hget(worker.key, "last_heartbeat")
    assert 0 < client.ttl(worker.key) <= 30

    worker._last_idle_beat -= 2  # a second later
    worker.heartbeat()
    assert client.ttl(worker.key) > worker.worker_ttl


def _children(pid: int) -> list[int]:
    from pathlib import Path

    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _running(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (nobody may reap it here)


# Linux only (PR_SET_PDEATHSIG), as are the machines EduFlow runs and is tested on.
def test_a_worker_killed_with_sigkill_takes_its_pool_processes_along() -> None:
    worker = spawn_worker("--concurrency", "2")
    try:
        wait_for(lambda: len(_children(worker.pid)) >= 2, timeout=60, what="the pool workers")
        children = _children(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        for child in children:
            wait_for(lambda c=child: not _running(c), timeout=15, what="the orphans to exit")
    finally:
        worker.kill()
        worker.communicate(timeout=10)


def test_a_worker_moves_retries_in_a_thread_not_in_a_child_process() -> None:
    from rq import Worker

    from eduflow.cache.stores import get_redis

    worker = spawn_worker()
    try:
        wait_for(lambda: bool(Worker.all(connection=get_redis())), timeout=60, what="the worker")
        # RQ's scheduler process died with Redis and came back a minute after it.
        assert _children(worker.pid) == []
        locks = get_redis().keys("rq:scheduler-lock:*")
        assert locks, "nobody moves due retries"
        assert 0 < get_redis().ttl(locks[0]) <= 5  # a killed worker's lock passes on quickly
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
