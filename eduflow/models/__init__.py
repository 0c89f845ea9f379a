"""SQLModel tables, one module per domain; importing this registers them all."""

from eduflow.models.audit import AuditRecord
from eduflow.models.certificates import Certificate
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson
from eduflow.models.outbox import OutboxJob
from eduflow.models.progress import LessonProgress, ProgressEvent
from eduflow.models.reports import DailyReport
from eduflow.models.sessions import LoginSession
from eduflow.models.tokens import AccountToken
from eduflow.models.users import Role, User
from eduflow.models.waitlist import WaitlistEntry, WaitlistStatus

__all__ = [
    "AccountToken",
    "AuditRecord",
    "Certificate",
    "Course",
    "DailyReport",
    "Enrollment",
    "EnrollmentStatus",
    "Lesson",
    "LessonProgress",
    "LoginSession",
    "OutboxJob",
    "ProgressEvent",
    "Role",
    "User",
    "WaitlistEntry",
    "WaitlistStatus",
]
