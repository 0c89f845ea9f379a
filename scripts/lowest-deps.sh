#!/usr/bin/env bash
# The floors of pyproject.toml are versions the code runs on: install the LOWEST allowed
# version of every direct dependency (uv's --resolution lowest-direct) into a throwaway
# virtualenv and run a smoke subset of the tests there, against PostgreSQL and Redis.
#
#   scripts/lowest-deps.sh            # from the repository root or anywhere in it
#
# Needs python3 (PYTHON=...), PyPI, and the test services (EDUFLOW_TEST_DATABASE_URL and
# EDUFLOW_TEST_REDIS_URL, defaults as in tests/conftest.py). When it fails, raise the floor
# of the dependency the failure names.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# The smoke subset: settings, packaging (the wheel and its files), the CLI, one API file.
SMOKE=(tests/test_config.py tests/test_packaging.py tests/test_cli_basics.py tests/api/test_courses.py)

work="$(mktemp -d "${TMPDIR:-/tmp}/eduflow-lowest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

echo "== lowest allowed versions of the direct dependencies"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip uv
"$venv/bin/uv" pip compile --quiet --resolution lowest-direct pyproject.toml --extra dev \
  --python "$venv/bin/python" --no-header --no-annotate -o "$work/lowest.txt"
grep -E '^[A-Za-z0-9_.-]+==' "$work/lowest.txt" | tr '\n' ' '
echo

echo "== install"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" -r "$work/lowest.txt"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --no-deps -e .

echo "== smoke tests on the lowest versions"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q "${SMOKE[@]}"
