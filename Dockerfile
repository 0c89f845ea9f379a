# syntax=docker/dockerfile:1
# EduFlow container image: one image for every role (api, worker, scheduler, migrate);
# the compose service picks the role with its command, e.g. `serve`, `worker`, `db upgrade`.
#
#   docker build -t eduflow .
#   docker run --rm eduflow --help

ARG PYTHON_VERSION=3.11

# ---- build: install the pinned dependencies and EduFlow itself into a virtualenv ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/eduflow
ENV PATH=/opt/eduflow/bin:$PATH

WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY eduflow ./eduflow
COPY alembic ./alembic
# A regular (non-editable) install whose runtime dependencies are pinned by the lock file
# (used as constraints, so the dev tools it also pins stay out of the image); the
# migrations ship inside the package, so `eduflow db upgrade` works from here.
RUN pip install --constraint requirements.lock . \
    && eduflow --version

# ---- runtime: the virtualenv and nothing else, as a non-root user ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="eduflow" \
      org.opencontainers.image.description="EduFlow: API server, background worker and operator CLI"

ENV PATH=/opt/eduflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EDUFLOW_ENV=production \
    EDUFLOW_MAIL_DIR=/var/lib/eduflow/mail

RUN groupadd --system --gid 10001 eduflow \
    && useradd --system --uid 10001 --gid eduflow --home-dir /app --shell /usr/sbin/nologin eduflow \
    && mkdir -p /app /var/lib/eduflow/mail \
    && chown -R eduflow:eduflow /app /var/lib/eduflow

COPY --from=build /opt/eduflow /opt/eduflow

WORKDIR /app
USER eduflow:eduflow
EXPOSE 8000

# Liveness of the API role (the worker and scheduler services override it in compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

ENTRYPOINT ["eduflow"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
