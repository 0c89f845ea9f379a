"""Email bodies from Jinja2 templates shipped in the package (``eduflow/jobs/templates``).

Each email ``NAME`` has three templates: ``NAME.subject.txt``, ``NAME.txt`` (plain text)
and ``NAME.html`` (HTML, autoescaped: a course title or a name can never inject markup).
Operators restyle them by pointing ``EDUFLOW_MAIL_TEMPLATES_DIR`` at a directory holding
templates of the same names; any template missing there comes from the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """What a message is made of."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def _environment(override: Path | None) -> Environment:
    loaders: list[BaseLoader] = []
    if override is not None:
        loaders.append(FileSystemLoader(str(override)))
    loaders.append(PackageLoader("eduflow.jobs", "templates"))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is an error, not an empty hole
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> RenderedEmail:
    """Subject, plain text and HTML of email ``template`` with ``context``."""
    from eduflow.config import get_settings

    env = _environment(get_settings().mail_templates_dir)
    subject = env.get_template(f"{template}.subject.txt").render(**context)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # one line, whatever the template's layout
        text=env.get_template(f"{template}.txt").render(**context),
        html=env.get_template(f"{template}.html").render(**context),
    )
