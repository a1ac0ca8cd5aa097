"""k8s/overlays/inference-pool: the gateway behind the Gateway API Inference Extension's endpoint
picker. Rendered with kustomize and validated like the other overlays, then the wiring: the pool
selects the gateway's pods on their port, the picker serves the pool and reads this gateway's
queue metric and vLLM's KV-cache metric from /metrics, and the HTTPRoute sends only the OpenAI
generation paths (the bodies the picker can read) to the pool, everything else to the Service.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jsonschema
import pytest
import yaml
from fastapi.routing import APIRoute

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.http.paths import PROBE_PATHS
from service.telemetry.metrics import GatewayMetrics
from tests.deploy.gateway_api_schemas import ENDPOINT_PICKER_CONFIG
from tests.deploy.helpers import Doc, rendered
from tests.deploy.test_k8s_schemas import NAMESPACE, validate

OVERLAY = "overlays/inference-pool"
POOL_PATHS = {"/v1/chat/completions", "/v1/completions"}  # OpenAI bodies: model + prompt/messages


def docs() -> tuple[Doc, ...]:
    return rendered(OVERLAY)


def named(kind: str, name: str) -> Doc:
    (found,) = [d for d in docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def the_one(kind: str) -> Doc:
    (found,) = [d for d in docs() if d["kind"] == kind]
    return found


def epp_container() -> Doc:
    pod = named("Deployment", "llm-gateway-epp")["spec"]["template"]["spec"]
    containers: list[Doc] = pod["containers"]
    (epp,) = containers
    return epp


def epp_args() -> dict[str, str]:
    args: list[str] = epp_container()["args"]
    return {args[i].removeprefix("--"): args[i + 1] for i in range(0, len(args), 2)}


def test_every_rendered_document_is_valid_and_namespaced() -> None:
    kinds = {d["kind"] for d in docs()}
    assert {"InferencePool", "HTTPRoute", "Deployment", "Service", "Role", "RoleBinding"} <= kinds
    for doc in docs():
        validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_the_pool_selects_the_gateway_pods_on_their_port() -> None:
    pool = the_one("InferencePool")["spec"]
    gateway = named("Deployment", "llm-gateway")["spec"]["template"]
    assert pool["selector"]["matchLabels"].items() <= gateway["metadata"]["labels"].items()
    epp = named("Deployment", "llm-gateway-epp")["spec"]["template"]["metadata"]["labels"]
    assert not pool["selector"]["matchLabels"].items() <= epp.items()  # not the picker itself
    (container,) = gateway["spec"]["containers"]
    ports = {p["containerPort"] for p in container["ports"]}
    assert [p["number"] for p in pool["targetPorts"]] == [8000]
    assert 8000 in ports


def test_the_picker_serves_this_pool() -> None:
    pool = the_one("InferencePool")
    ref = pool["spec"]["endpointPickerRef"]
    service = named("Service", ref["name"])
    (grpc,) = [p for p in service["spec"]["ports"] if p["port"] == ref["portNumber"]]
    container_ports = {p["name"]: p["containerPort"] for p in epp_container()["ports"]}
    assert container_ports[grpc["targetPort"]] == ref["portNumber"]
    selector = service["spec"]["selector"]
    pod_labels = named("Deployment", "llm-gateway-epp")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    args = epp_args()
    assert args["pool-name"] == pool["metadata"]["name"]
    assert args["pool-namespace"] == NAMESPACE
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in the_one("Role")["rules"]}
    assert (("inference.networking.k8s.io",), ("inferencepools",)) in rules
    assert (("",), ("pods",)) in rules


def test_the_picker_reads_the_gateway_queue_and_vllm_kv_cache_metrics() -> None:
    args = epp_args()
    metrics = GatewayMetrics()
    exposed = {family.name for family in metrics.registry.collect()}
    assert args["total-queued-requests-metric"] == "gateway_queue_depth"
    assert "gateway_queue_depth" in exposed
    assert args["kv-cache-usage-percentage-metric"] == "vllm:kv_cache_usage_perc"
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None
    loggers = Path(spec.origin).parent / "v1" / "metrics" / "loggers.py"
    assert '"vllm:kv_cache_usage_perc"' in loggers.read_text()  # vLLM's own gauge, by this name
    assert "/metrics" in PROBE_PATHS  # the picker scrapes without an API key


def test_the_picker_config_is_mounted_and_its_profile_uses_its_plugins() -> None:
    config_path = Path(epp_args()["config-file"])
    (mount,) = epp_container()["volumeMounts"]
    assert config_path.parent == Path(mount["mountPath"])
    pod = named("Deployment", "llm-gateway-epp")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = named("ConfigMap", volume["configMap"]["name"])
    config = yaml.safe_load(config_map["data"][config_path.name])
    jsonschema.validate(config, ENDPOINT_PICKER_CONFIG)
    plugins = {p.get("name", p["type"]) for p in config["plugins"]}
    used = {
        ref["pluginRef"] for profile in config["schedulingProfiles"] for ref in profile["plugins"]
    }
    assert used <= plugins
    assert {"queue-scorer", "kv-cache-utilization-scorer"} <= used


def backend_of(path: str) -> Doc:
    """The backend the HTTPRoute picks for a path: an Exact match first, then the longest
    PathPrefix (Gateway API's precedence)."""
    route = the_one("HTTPRoute")["spec"]
    candidates: list[tuple[int, int, Doc]] = []
    for rule in route["rules"]:
        (backend,) = rule["backendRefs"]
        for match in rule["matches"]:
            kind, value = match["path"]["type"], match["path"]["value"]
            if kind == "Exact" and path == value:
                candidates.append((1, len(value), backend))
            elif kind == "PathPrefix" and (
                path == value or path.startswith(value.rstrip("/") + "/")
            ):
                candidates.append((0, len(value), backend))
    assert candidates, f"no rule matches {path}"
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def app_paths() -> set[str]:
    app = create_app(Settings(), engine_factory=FakeEngine)
    return {route.path for route in app.routes if isinstance(route, APIRoute)}


@pytest.mark.parametrize("path", sorted(app_paths()))
def test_only_openai_generation_paths_go_to_the_pool(path: str) -> None:
    backend = backend_of(path)
    service = named("Service", "llm-gateway")
    if path in POOL_PATHS:
        assert backend["kind"] == "InferencePool"
        assert backend["name"] == the_one("InferencePool")["metadata"]["name"]
    else:
        assert backend["kind"] == "Service" and backend["name"] == service["metadata"]["name"]
        assert backend["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_the_task_and_render_paths_are_among_those_checked() -> None:
    checked = app_paths()
    assert checked >= POOL_PATHS
    assert {"/v1/generate", "/v1/summarize", "/v1/classify", "/v1/chat"} <= checked
    assert {"/v1/chat/completions/render", "/v1/completions/render"} <= checked
