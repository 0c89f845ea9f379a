"""The worker process: heartbeats that cost one round trip, no orphans after a SIGKILL."""

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
def test_a_worker_killed_with_sigkill_takes_its_scheduler_process_along() -> None:
    worker = spawn_worker()
    try:
        wait_for(lambda: bool(_children(worker.pid)), timeout=30, what="RQ's scheduler process")
        [scheduler] = _children(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: not _running(scheduler), timeout=15, what="the orphan to exit")
    finally:
        worker.kill()
        worker.communicate(timeout=10)
