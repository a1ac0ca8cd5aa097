"""docker-compose.yml and its GPU override: the Compose specification, and the wiring."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import (
    ROOT,
    default_drain_timeout,
    duration_seconds,
    interpolate_defaults,
    load_yaml,
    run,
    run_ok,
    settings_env_names,
    shutdown_overhead,
    tool,
    variables_used,
)
from tests.deploy.test_docker import STAGES

COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def services(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = load_yaml(path)["services"]
    return result


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Path) -> None:
    run_ok(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path))


def test_the_schema_check_catches_a_typo(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  gateway:\n    image: x\n    stop_grace: 45s\n")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad))
    assert result.returncode != 0 and "stop_grace" in result.stdout


def test_stack_is_gateway_prometheus_grafana() -> None:
    stack = services(COMPOSE)
    assert {"gateway", "prometheus", "grafana"} <= set(stack)
    assert stack["gateway"]["build"]["target"] == "cpu"
    assert all("profiles" not in stack[name] for name in ("gateway", "prometheus", "grafana"))
    for name, service in stack.items():
        if "build" in service:
            assert service["build"]["target"] in STAGES, name
        else:
            image = service["image"]
            assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned"


def test_gateway_gets_time_to_drain() -> None:
    gateway = services(COMPOSE)["gateway"]
    drain = float(interpolate_defaults(gateway["environment"]["GATEWAY_DRAIN_TIMEOUT_SECONDS"]))
    assert drain == default_drain_timeout()
    grace = duration_seconds(interpolate_defaults(gateway["stop_grace_period"]))
    assert grace > drain + shutdown_overhead(), "docker would SIGKILL the gateway while it drains"


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_gateway_environment_names_real_settings(path: Path) -> None:
    environment = services(path)["gateway"]["environment"]
    unknown = {k for k in environment if k.startswith("GATEWAY_")} - settings_env_names()
    assert not unknown, f"not settings of service/config: {sorted(unknown)}"


def test_gpu_override_reserves_a_gpu_and_mounts_the_model_cache() -> None:
    gateway = services(COMPOSE_GPU)["gateway"]
    assert gateway["build"]["target"] == "gpu"
    (device,) = gateway["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    gpu_env = STAGES["gpu"].env()
    targets = {interpolate_defaults(v).split(":")[1] for v in gateway["volumes"]}
    assert gpu_env["GATEWAY_DOWNLOAD_DIR"] in targets
    assert "models" in load_yaml(COMPOSE_GPU)["volumes"]


def test_bind_mounts_are_read_only_inputs_that_exist() -> None:
    for path in (COMPOSE, COMPOSE_GPU):
        for name, service in services(path).items():
            for volume in service.get("volumes", []):
                source, _target, *options = interpolate_defaults(volume).split(":")
                mode = options[0] if options else "rw"
                if not source.startswith("."):
                    continue  # a named volume
                if mode == "rw":  # an output folder (Locust's reports), made on first run
                    assert "results" in source, f"{path.name} {name}: {volume} is writable"
                else:
                    assert mode == "ro", f"{path.name} {name}: mount {source} read-only"
                    assert (ROOT / source).exists(), f"{path.name} {name}: {source} is missing"


def test_grafana_gets_the_dashboard_and_provisioning() -> None:
    grafana = services(COMPOSE)["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard_target = mounts["./observability/grafana/llm-gateway.json"]
    provider = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/llm-gateway.yml")
    (dashboards,) = provider["providers"]
    assert str(Path(dashboard_target).parent) == dashboards["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_target


def test_prometheus_mounts_its_config_and_rules() -> None:
    prometheus = services(COMPOSE)["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/prometheus/rules.yml"] == "/etc/prometheus/rules.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_locust_is_an_optional_loadtest_profile() -> None:
    locust = services(COMPOSE)["locust"]
    assert locust["profiles"] == ["loadtest"]
    assert locust["build"]["target"] == "loadtest"
    assert "--host=http://gateway:8000" in locust["command"]
    assert locust["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_env_example_documents_every_variable() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    used = variables_used(COMPOSE.read_text()) | variables_used(COMPOSE_GPU.read_text())
    assert used - documented == set(), "add these to .env.example"
    extra = documented - used - {"COMPOSE_FILE", "COMPOSE_PROFILES"}
    assert extra == set(), f".env.example documents variables nothing reads: {sorted(extra)}"


def test_env_example_settings_are_real_settings() -> None:
    names = set(re.findall(r"^#?\s*(GATEWAY_[A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert names - settings_env_names() == set()
