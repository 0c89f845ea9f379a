"""The worker's heartbeat: one round trip, not repeated between back-to-back jobs."""

from __future__ import annotations


def test_idle_heartbeats_are_batched_and_spaced_but_job_heartbeats_always_go_through() -> None:
    from eduflow.cache import get_redis
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
