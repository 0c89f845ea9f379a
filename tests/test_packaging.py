"""compose.yml, the Dockerfile, .env.example and the proxy config agree with the code.

Docker is not needed: the files are parsed and checked against the settings class and
the command line, so they cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "api", "worker", "scheduler")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def settings_env_names() -> set[str]:
    from eduflow.config import Settings

    return {f"EDUFLOW_{name.upper()}" for name in Settings.model_fields}


def env_example() -> dict[str, str]:
    """Keys of .env.example, including commented-out ``# KEY=value`` examples."""
    out = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def parse_cli(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """Resolve ``eduflow ARGS`` to its command and parsed options, without running it."""
    import typer.main

    from eduflow.cli import app

    command: Any = typer.main.get_command(app)
    ctx = command.make_context("eduflow", list(args))
    while hasattr(command, "resolve_command"):
        # Click keeps the sub-command name apart from its arguments ("protected").
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        rest = [*protected, *ctx.args]
        if not rest:
            break
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    return command, ctx.params


# --- compose.yml -------------------------------------------------------------------


def test_compose_has_the_production_services(services: dict[str, Any]) -> None:
    assert set(services) >= {"db", "redis", "migrate", "api", "worker", "scheduler", "proxy"}
    assert services["db"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_every_eduflow_variable_in_compose_is_a_setting(compose: dict[str, Any]) -> None:
    known = settings_env_names()
    text = (ROOT / "compose.yml").read_text()
    interpolated = {m.group(1) for m in INTERPOLATION.finditer(text)}
    assert {v for v in interpolated if v.startswith("EDUFLOW_")} - {"EDUFLOW_IMAGE"} <= known
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        unknown = {k for k in env if k.startswith("EDUFLOW_")} - known
        assert not unknown, f"{name}: {unknown} are not EduFlow settings"


def test_pgbouncer_pools_transactions_in_front_of_the_database(
    services: dict[str, Any],
) -> None:
    bouncer = services["pgbouncer"]
    assert bouncer["environment"]["DB_HOST"] == "db"
    assert bouncer["environment"]["POOL_MODE"] == "transaction"
    assert bouncer["environment"]["LISTEN_PORT"] == "6432"
    assert bouncer["depends_on"]["db"]["condition"] == "service_healthy"


def test_app_services_run_in_production_on_postgresql_and_redis(
    services: dict[str, Any],
) -> None:
    from eduflow.config import Settings

    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["EDUFLOW_ENV"] == "production", name
        assert env["EDUFLOW_DATABASE_URL"].startswith("postgresql://"), name
        # Through PgBouncer (transaction pooling), with psycopg configured for it.
        assert "@pgbouncer:6432/" in env["EDUFLOW_DATABASE_URL"], name
        assert env["EDUFLOW_DB_PGBOUNCER"] == "true", name
        assert env["EDUFLOW_REDIS_URL"].startswith("redis://redis:6379/"), name
        # The secret key is required (compose refuses to start without it).
        assert re.fullmatch(r"\$\{EDUFLOW_SECRET_KEY:\?[^}]+\}", env["EDUFLOW_SECRET_KEY"])
        # With the ${...:-default} values substituted, the settings class accepts them.
        resolved = {
            k.removeprefix("EDUFLOW_").lower(): INTERPOLATION.sub(
                lambda m: m.group(3) if m.group(2) == ":-" else "x" * 40, str(v)
            )
            for k, v in env.items()
            if k.startswith("EDUFLOW_")
        }
        settings = Settings(_env_file=None, **resolved)
        assert settings.env == "production"
        assert not settings.is_embedded and not settings.is_sqlite
        assert settings.resolved_secret_key()


def test_required_compose_variables_are_in_env_example() -> None:
    text = (ROOT / "compose.yml").read_text()
    required = {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(2) == ":?"}
    assert required == {"POSTGRES_PASSWORD", "EDUFLOW_SECRET_KEY"}
    assert required <= set(env_example())


def test_env_example_names_only_real_settings() -> None:
    keys = set(env_example())
    eduflow_keys = {k for k in keys if k.startswith("EDUFLOW_")}
    assert eduflow_keys - settings_env_names() == set()
    # Everything else is read by compose.yml itself.
    text = (ROOT / "compose.yml").read_text()
    for other in keys - eduflow_keys:
        if other.startswith("OTEL_"):  # the tracing SDK's own, read by the containers
            continue
        assert "${" + other in text, f"{other} in .env.example is used nowhere"


def test_startup_order_migrate_first(services: dict[str, Any]) -> None:
    assert services["db"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"]
    assert services["pgbouncer"]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["pgbouncer"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_scaling_shape(services: dict[str, Any]) -> None:
    # Scalable services publish no host port (only the proxy does) and have no fixed name.
    for name in ("api", "worker"):
        assert "ports" not in services[name], name
        assert "container_name" not in services[name], name
    assert services["proxy"]["ports"]
    assert services["scheduler"]["deploy"]["replicas"] == 1
    # The api containers are reached only by the proxy, which they trust for X-Forwarded-*.
    assert services["api"]["environment"]["EDUFLOW_FORWARDED_ALLOW_IPS"] == "*"
    # Graceful shutdown fits in the stop grace period.
    from eduflow.config import Settings

    grace = int(services["api"]["stop_grace_period"].removesuffix("s"))
    assert grace > Settings.model_fields["graceful_timeout"].default


def test_redis_is_persistent_and_never_evicts_jobs(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_commands_exist_in_the_cli(services: dict[str, Any], service: str) -> None:
    command, params = parse_cli(services[service]["command"])
    assert command.callback is not None
    if service == "api":
        assert command.name == "serve"
        assert params["host"] == "0.0.0.0" and params["port"] == 8000
        assert params["workers"] >= 2
    if service == "scheduler":
        assert command.name == "scheduler"
    if service == "worker":
        assert command.name == "worker"
        assert params["with_scheduler"] is False


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    image_healthcheck = "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()
    for name, service in services.items():
        if service.get("restart") == "no":  # one-shot (migrate)
            continue
        healthcheck = service.get("healthcheck", {})
        assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
        from_image = service.get("image", "").startswith("${EDUFLOW_IMAGE") and image_healthcheck
        assert healthcheck.get("test") or from_image, f"{name} has no healthcheck"


@pytest.mark.parametrize("service", ["worker", "scheduler"])
def test_job_processes_are_checked_by_their_heartbeat(
    services: dict[str, Any], service: str
) -> None:
    test = services[service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "eduflow"]
    command, params = parse_cli(test[2:])
    assert command.name == service and params["check"] is True


def test_prometheus_scrapes_every_eduflow_process(services: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    ports = {
        sd["names"][0]: sd["port"]
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
    }
    assert ports["api"] == parse_cli(services["api"]["command"])[1]["port"]
    for name in ("worker", "scheduler"):
        port = int(services[name]["environment"]["EDUFLOW_METRICS_PORT"])
        assert ports[name] == port and str(port) in services[name]["expose"]
    mounted = {v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert {"./deploy/prometheus.yml", "./deploy/alerts.yml"} <= mounted
    assert config["rule_files"] == ["alerts.yml"]  # next to prometheus.yml in the container


def test_monitoring_services_are_a_profile_bound_to_loopback(services: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana", "rq-dashboard"):
        assert services[name]["profiles"] == ["monitoring"], name
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "profiles" not in services["api"]


def test_proxy_keeps_metrics_internal() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    block = re.search(r"location\s*=\s*/metrics\s*\{([^}]*)\}", conf)
    assert block and "return 404;" in block.group(1)


def test_parse_cli_rejects_unknown_options() -> None:
    from typer._click.exceptions import UsageError  # Typer vendors Click

    with pytest.raises(UsageError):
        parse_cli(["serve", "--no-such-option"])
    with pytest.raises(UsageError):
        parse_cli(["no-such-command"])


def test_proxy_config_points_at_the_api_service(services: dict[str, Any]) -> None:
    conf_mount = next(v for v in services["proxy"]["volumes"] if "nginx.conf" in v)
    host_path = conf_mount.split(":")[0]
    conf = (ROOT / host_path).read_text()
    assert re.search(r"server\s+api:8000\s+resolve", conf)
    assert "proxy_pass http://eduflow_api;" in conf
    assert "X-Forwarded-For" in conf and "X-Forwarded-Proto" in conf
    # Bodies between 1 and 2 MiB reach EduFlow, which answers them with its own 413 problem.
    assert re.search(r"client_max_body_size\s+2m;", conf)
    upstream_keepalive = int(re.search(r"keepalive_timeout\s+(\d+)s;", conf).group(1))
    from eduflow.config import Settings

    assert Settings.model_fields["keep_alive_timeout"].default > upstream_keepalive
    # Slow clients are stopped by the proxy (uvicorn has no header-read timeout).
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        seconds = int(re.search(rf"{directive}\s+(\d+)s;", conf).group(1))  # type: ignore[union-attr]
        assert 0 < seconds <= 30, directive
    zone = re.search(r"limit_conn_zone\s+\$binary_remote_addr\s+zone=(\w+):", conf)
    assert zone and re.search(rf"limit_conn\s+{zone.group(1)}\s+\d+;", conf)


# --- Dockerfile --------------------------------------------------------------------


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-form arguments of the last ``NAME [...]`` instruction (joined continuations)."""
    import json

    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert found, f"no exec-form {name} in the Dockerfile"
    value = json.loads(found[-1])
    assert isinstance(value, list)
    return value


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert dockerfile_instruction("ENTRYPOINT") == ["eduflow"]
    assert "eduflow" in pyproject["project"]["scripts"]
    command, params = parse_cli(dockerfile_instruction("CMD"))
    assert command.name == "serve"
    assert params["host"] == "0.0.0.0"


def test_dockerfile_healthcheck_polls_healthz_on_the_served_port(client: Any) -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    healthcheck = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    cmd_params = parse_cli(dockerfile_instruction("CMD"))[1]
    assert f"http://127.0.0.1:{cmd_params['port']}/healthz" in healthcheck
    assert client.get("/healthz").status_code == 200


def test_dockerfile_is_multi_stage_non_root_and_locked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2
    assert re.search(r"^USER\s+(?!root)\S+", text, flags=re.MULTILINE)
    assert "--constraint requirements.lock" in text
    # Every file the build copies exists.
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.MULTILINE):
        *sources, _dest = shlex.split(line)
        for source in sources:
            assert (ROOT / source).exists(), source


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(EDUFLOW_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    assert settings_env_names() - rows == set(), "settings missing from the README table"
    assert rows - settings_env_names() == set(), "README documents settings that do not exist"
