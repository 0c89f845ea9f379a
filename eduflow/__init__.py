"""EduFlow: the backend of an online-courses platform."""

__version__ = "0.1.0"
