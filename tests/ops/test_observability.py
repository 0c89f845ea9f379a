"""Metrics that never vanish, and the monitoring files that rest on them: the series table
of docs/operations.md, /metrics (with Redis down too), deploy/alerts.yml,
deploy/prometheus.yml and the Grafana dashboard agree."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, reset_process_state

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
# Series Prometheus makes itself, not EduFlow.
PROMETHEUS_OWN = {"up"}
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}


def documented_series() -> set[str]:
    """The series of the table in docs/operations.md, section 9."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return set(re.findall(r"^\| `(eduflow_[a-z0-9_]+)` \|", text, flags=re.MULTILINE))


def scrape(client: Any) -> dict[str, Any]:
    """/metrics parsed: family name -> family (counters without ``_total``)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def exported_names(families: dict[str, Any]) -> set[str]:
    """Every name a query may use for these families (``_total``, ``_bucket``, …)."""
    names: set[str] = set()
    for name, family in families.items():
        names.add(name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.update({name + "_total", name + "_created"})
        if family.type == "histogram":
            names.update(name + suffix for suffix in ("_bucket", "_sum", "_count", "_created"))
    return names


def family_of(series: str, families: dict[str, Any]) -> Any:
    return families.get(series) or families.get(series.removesuffix("_total"))


def value(families: dict[str, Any], name: str) -> float:
    (sample,) = families[name].samples
    return float(sample.value)


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (label names and functions left out)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_strings = re.sub(r'"[^"]*"', "", without_labels)
    without_groupings = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", without_strings)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", without_groupings))
    return {n for n in names if n.startswith("eduflow_") or n in PROMETHEUS_OWN} - _PROMQL_WORDS


def test_the_documented_series_are_the_declared_ones() -> None:
    from eduflow.metrics import declared_metrics

    declared = {
        name + "_total" if kind == "counter" else name
        for name, (kind, _doc) in declared_metrics().items()
    }
    assert documented_series() == declared


def test_metrics_while_redis_is_down_list_every_documented_series(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/api/v1/courses/").status_code == 200  # Redis up: a request counted
    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    families = scrape(client)
    missing = {s for s in documented_series() if family_of(s, families) is None}
    assert not missing, f"absent from /metrics while Redis is down: {sorted(missing)}"
    # Figures read from Redis are NaN (not missing) and say why; PostgreSQL still answers.
    assert math.isnan(value(families, "eduflow_jobs_failed"))
    assert value(families, "eduflow_redis_up") == 0
    assert value(families, "eduflow_database_up") == 1
    assert value(families, "eduflow_outbox_backlog") == 0
    # Fixed label sets exist from the start (at 0 until something happens).
    outcomes = {
        s.labels["outcome"]
        for s in families["eduflow_login_attempts"].samples
        if s.name.endswith("_total")
    }
    assert outcomes == {"success", "failed", "throttled", "disabled"}


def test_with_everything_up_the_gauges_are_figures(client: Any) -> None:
    families = scrape(client)
    assert value(families, "eduflow_redis_up") == 1 and value(families, "eduflow_database_up") == 1
    assert value(families, "eduflow_jobs_failed") == 0
    jobs = {s.labels["job"] for s in families["eduflow_jobs_enqueued"].samples}
    from eduflow.jobs.outbox import TASKS

    assert set(TASKS) <= jobs  # every job's series exists before its first enqueue


def test_the_database_down_makes_the_backlog_nan_not_missing(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    reset_process_state()
    families = scrape(client)
    assert math.isnan(value(families, "eduflow_outbox_backlog"))
    assert value(families, "eduflow_database_up") == 0


def test_the_multiprocess_view_lists_families_nobody_counted_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eduflow.metrics import render

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # no process wrote anything
    body, _ = render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    missing = {s for s in documented_series() if family_of(s, families) is None}
    assert not missing


def _dashboard_exprs() -> list[str]:
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "expr" and isinstance(item, str):
                    exprs.append(item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    dashboards = sorted(DASHBOARDS.glob("*.json"))
    assert dashboards
    for path in dashboards:
        walk(json.loads(path.read_text()))  # parses, or the test fails here
    return exprs


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_monitoring_files_read_only_series_that_metrics_exports(client: Any, source: str) -> None:
    exprs = _dashboard_exprs() if source == "dashboard" else _alert_exprs()
    exported = exported_names(scrape(client)) | PROMETHEUS_OWN
    used = set().union(*(metric_names_in(e) for e in exprs))
    assert used, "no metric found in the expressions"
    assert used - exported == set(), f"{source} reads series /metrics does not export"


def test_the_dashboard_shows_what_operators_watch() -> None:
    used = set().union(*(metric_names_in(e) for e in _dashboard_exprs()))
    for series in (
        "eduflow_http_requests_total",
        "eduflow_http_request_duration_seconds_bucket",
        "eduflow_cache_hits_total",
        "eduflow_cache_misses_total",
        "eduflow_outbox_backlog",
        "eduflow_jobs_failed",
        "eduflow_progress_events_total",
        "eduflow_course_completions_total",
    ):
        assert series in used, series


def test_metric_names_in_reads_names_not_labels_or_functions() -> None:
    expr = 'sum by (le, route) (rate(eduflow_x_bucket{route="/a", job="eduflow_y"}[5m])) > up'
    assert metric_names_in(expr) == {"eduflow_x_bucket", "up"}


def _promtool(*args: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (Debian package `prometheus`, installed by .ci/run)"
    result = subprocess.run(
        [promtool, *args], cwd=ROOT / "deploy", capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_config_and_rules() -> None:
    _promtool("check", "config", "prometheus.yml")
    _promtool("check", "rules", "alerts.yml")


def test_the_alerts_fire_on_what_eduflow_exports() -> None:
    _promtool("test", "rules", "alerts.test.yml")


def test_grafana_provisioning_feeds_the_dashboard() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict):
                used.add(source["uid"])
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in DASHBOARDS.glob("*.json"):
        walk(json.loads(path.read_text()))
    assert used and used <= uids
    providers = yaml.safe_load((provisioning / "dashboards" / "eduflow.yml").read_text())
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == providers["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
