"""The outbox, below the services: a job is recorded in the transaction of the change that
causes it (``record``) and handed to RQ after the commit, or by the sweep (``relay``).

Services import it; it imports nothing above the models and ``db`` (task functions are
named by dotted path and imported by the worker only).
"""

from eduflow.outbox.record import record_job, record_row, relay_on_commit
from eduflow.outbox.relay import (
    TASKS,
    InsertedJob,
    JobRow,
    RelayResult,
    enqueue_row,
    flush_relay_marks,
    job_id_for,
    outbox_backlog,
    prune_relayed,
    relay_after_commit,
    relay_pending,
    wake_embedded,
)

__all__ = [
    "TASKS",
    "InsertedJob",
    "JobRow",
    "RelayResult",
    "enqueue_row",
    "flush_relay_marks",
    "job_id_for",
    "outbox_backlog",
    "prune_relayed",
    "record_job",
    "record_row",
    "relay_after_commit",
    "relay_on_commit",
    "relay_pending",
    "wake_embedded",
]
