"""Prometheus (promtool) and Grafana provisioning for `docker compose up`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from tests.deploy.helpers import ROOT, load_yaml, run_ok, tool, walk
from tests.deploy.test_compose import COMPOSE, services

PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD = ROOT / "observability" / "grafana" / "llm-gateway.json"


def test_promtool_checks_the_config_and_its_rule_files() -> None:
    out = run_ok(tool("promtool"), "check", "config", str(PROMETHEUS))
    assert "1 rule files found" in out


def test_promtool_checks_the_rules() -> None:
    run_ok(tool("promtool"), "check", "rules", str(RULES))


def test_rules_behave_as_specified() -> None:
    """Recording rule sums both queues; alerts fire when they should (promtool unit tests)."""
    run_ok(tool("promtool"), "test", "rules", "promtool_rules_test.yml", cwd=ROOT / "tests/deploy")


def test_prometheus_scrapes_the_compose_gateway() -> None:
    config = load_yaml(PROMETHEUS)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "llm-gateway"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (targets,) = [c["targets"] for c in job["static_configs"]]
    host, port = targets[0].split(":")
    gateway = services(COMPOSE)["gateway"]
    assert host in services(COMPOSE) and port == gateway["environment"]["GATEWAY_PORT"]


def test_grafana_datasource_is_the_compose_prometheus() -> None:
    (source,) = load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    url = urlparse(source["url"])
    assert url.hostname == "prometheus" and url.hostname in services(COMPOSE)
    assert url.port == 9090


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """The dashboard picks its source through a `datasource` variable of type prometheus (its
    default is Grafana's default source, the provisioned one); every query goes through it."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    refs = [
        node["datasource"]
        for node in walk(dashboard)
        if isinstance(node, dict) and isinstance(node.get("datasource"), dict)
    ]
    assert refs and all(r == {"type": "prometheus", "uid": "${datasource}"} for r in refs)
    assert "__inputs" not in dashboard, "an import-time input would not be filled by provisioning"
