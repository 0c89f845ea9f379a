"""Demo learning progress: some students not started, many part-way, some finished.

Decided while the enrollment rows stream to the database: each active enrollment's
progress is drawn from its own random stream, its counters (``completed_lessons``,
``completed_at``) go into the enrollment row itself, and its progress rows are spooled
to a temporary file that is loaded after the enrollments. Memory stays bounded whatever
the size, no enrollment is written twice, and the counters agree with ``eduflow progress
recompute`` by construction.

The spool holds the rows already as tuples of PostgreSQL's binary ``COPY`` format
(34 or 42 bytes), so PostgreSQL loads it as it is: at 100,000 demo courses that is
9.9 million rows that no longer become Python datetimes and tuples on the way out (the
load took 23 s of mostly Python; SQLite reads the tuples back into rows). Times are
whole seconds throughout, as integers, for the same reason.

Finished demo enrollments count as already congratulated (``completion_email_sent_at``):
seeding sends no email.
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# PostgreSQL's binary COPY: a tuple is its field count, then each field's length and
# bytes (-1: NULL); int4 ids, timestamptz as int8 microseconds since 2000-01-01.
_PG_EPOCH_SECONDS = 946_684_800
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COMPLETED = struct.Struct(">hiiiiiqiq")
_VIEWED = struct.Struct(">hiiiiiqi")  # completed_at NULL
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


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
        count, write = self.lessons_per_course, self._spool.write
        # random() draws alone: randint() costs four times as much, per row of millions
        rand = self.rng.random
        now = _seconds(self.now)
        completed, viewed_only = _COMPLETED.pack, _VIEWED.pack
        none = (0, None, None)
        for row in enrollments:
            if row[3] != active or not count:
                yield row + none
                continue
            roll = rand()
            if roll < NOT_STARTED:
                yield row + none
                continue
            self.started += 1
            done = count if roll >= NOT_STARTED + PART_WAY else int(rand() * count)
            viewed = min(count, done + (rand() < 0.5)) or 1
            created = _seconds(row[4])
            step = max(now - created, 60) / (count + 1)
            lesson = self.first_lesson + (row[2] - self.first_course) * count
            enrollment, at, last = row[0], created, -1
            for index in range(viewed):
                # a random fraction of a step later, to the whole second
                at = min(at + round(rand() * step * 1_000_000) // 1_000_000, now)
                viewed_at = (at - _PG_EPOCH_SECONDS) * 1_000_000
                if index < done:
                    finished = min(at + 60 * (5 + int(rand() * 41)), now)  # 5-45 minutes
                    last = max(last, finished)
                    finished_at = (finished - _PG_EPOCH_SECONDS) * 1_000_000
                    write(
                        completed(4, 4, enrollment, 4, lesson + index, 8, viewed_at, 8, finished_at)
                    )
                else:
                    write(viewed_only(4, 4, enrollment, 4, lesson + index, 8, viewed_at, -1))
            self.rows += viewed
            if done == count:
                self.completed += 1
                moment = _at(last)
                yield (*row, done, moment, moment)
            else:
                yield (*row, done, None, None)

    def progress_copy(self, chunk_bytes: int = 1 << 20) -> Iterator[tuple[bytes, int]]:
        """The spooled progress rows as PostgreSQL binary ``COPY`` data (``PROGRESS_COLUMNS``,
        header and trailer included), in chunks with about how many rows each holds."""
        total = self._spool.seek(0, 2)
        self._spool.seek(0)
        yield COPY_HEADER, 0
        done_bytes = reported = 0
        while chunk := self._spool.read(chunk_bytes):
            done_bytes += len(chunk)
            rows = self.rows * done_bytes // total - reported
            reported += rows
            yield chunk, rows
        yield COPY_TRAILER, 0

    def progress_rows(self) -> Iterator[tuple[Any, ...]]:
        """The spooled progress rows (``PROGRESS_COLUMNS``) as tuples, in enrollment order."""
        self._spool.seek(0)
        data, offset = b"", 0
        while chunk := self._spool.read(1 << 20):
            data, offset = data[offset:] + chunk, 0
            while len(data) - offset >= _COMPLETED.size:  # a whole tuple of either size
                row, offset = _decoded(data, offset)
                yield row
        while offset < len(data):  # the last records, shorter than a completed one
            row, offset = _decoded(data, offset)
            yield row

    def close(self) -> None:
        """Remove the spool."""
        self._spool.close()


def _seconds(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds())


def _at(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _decoded(data: bytes, offset: int) -> tuple[tuple[Any, ...], int]:
    """The progress row of the ``COPY`` tuple at ``offset``, and the next tuple's offset."""
    _n, _l1, enrollment, _l2, lesson, _l3, viewed, length = _VIEWED.unpack_from(data, offset)
    offset += _VIEWED.size
    finished = None
    if length == 8:
        (micros,) = struct.unpack_from(">q", data, offset)
        offset += 8
        finished = _pg_at(micros)
    return (enrollment, lesson, _pg_at(viewed), finished), offset


def _pg_at(micros: int) -> datetime:
    return _PG_EPOCH + timedelta(microseconds=micros)
