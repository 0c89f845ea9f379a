"""Demo learning progress: some students not started, many part-way, some finished.

Decided while the enrollment rows stream to the database: each active enrollment's
progress is drawn from its own random stream, its counters (``completed_lessons``,
``completed_at``) go into the enrollment row itself, and its progress rows are spooled
to a temporary file (32 bytes a row) that is loaded after the enrollments. Memory stays
bounded whatever the size, no enrollment is written twice, and the counters agree with
``eduflow progress recompute`` by construction. Finished demo enrollments count as
already congratulated (``completion_email_sent_at``): seeding sends no email.
"""

from __future__ import annotations

import random
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from eduflow.models.enrollments import EnrollmentStatus

NOT_STARTED, PART_WAY = 0.25, 0.55  # the rest finished
PROGRESS_COLUMNS = ("enrollment_id", "lesson_id", "viewed_at", "completed_at")
COUNTER_COLUMNS = ("completed_lessons", "completed_at", "completion_email_sent_at")
_RECORD = struct.Struct("<qqqq")  # enrollment, lesson, viewed_at, completed_at (-1: none)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class DemoProgress:
    """Decides the progress of the enrollment rows passed through ``rows``.

    Lessons are numbered as the demo writes them: course ``first_course + i`` has the
    lessons ``first_lesson + i * lessons_per_course`` onwards, in their order."""

    rng: random.Random
    now: datetime
    first_course: int
    first_lesson: int
    lessons_per_course: int
    rows: int = 0
    started: int = 0
    completed: int = 0
    _spool: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile())  # noqa: SIM115

    def with_counters(self, enrollments: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """The enrollment rows (``ENROLLMENT_COLUMNS``), each extended by
        ``COUNTER_COLUMNS``; the progress rows of the active ones go to the spool."""
        active = EnrollmentStatus.active.value
        count, rng, now, write = self.lessons_per_course, self.rng, self.now, self._spool.write
        none = (0, None, None)
        for row in enrollments:
            if row[3] != active or not count:
                yield row + none
                continue
            roll = rng.random()
            if roll < NOT_STARTED:
                yield row + none
                continue
            self.started += 1
            done = count if roll >= NOT_STARTED + PART_WAY else rng.randint(0, count - 1)
            viewed = min(count, done + rng.randint(0, 1)) or 1
            created: datetime = row[4]
            step = max((now - created).total_seconds(), 60.0) / (count + 1)
            lesson = self.first_lesson + (row[2] - self.first_course) * count
            at, last = created, None
            for index in range(viewed):
                at = min(at + timedelta(seconds=rng.uniform(0, step)), now).replace(microsecond=0)
                finished = None
                if index < done:
                    finished = min(at + timedelta(minutes=rng.randint(5, 45)), now)
                    last = finished if last is None or finished > last else last
                write(_RECORD.pack(row[0], lesson + index, _seconds(at), _seconds(finished)))
            self.rows += viewed
            if done == count:
                self.completed += 1
                yield (*row, done, last, last)
            else:
                yield (*row, done, None, None)

    def progress_rows(self) -> Iterator[tuple[Any, ...]]:
        """The spooled progress rows (``PROGRESS_COLUMNS``), in enrollment order."""
        self._spool.seek(0)
        while chunk := self._spool.read(_RECORD.size * 8192):
            for enrollment, lesson, viewed, finished in _RECORD.iter_unpack(chunk):
                yield (enrollment, lesson, _at(viewed), None if finished < 0 else _at(finished))

    def close(self) -> None:
        """Remove the spool."""
        self._spool.close()


def _seconds(moment: datetime | None) -> int:
    return -1 if moment is None else int((moment - _EPOCH).total_seconds())


def _at(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)
