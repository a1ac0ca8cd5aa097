"""Kubernetes manifests (k8s/): schemas offline, kustomize renders, and what the issue requires.

Core kinds are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict: no
unknown fields) against the oldest and newest versions it ships. Custom resources (ServiceMonitor,
ScaledObject, LeaderWorkerSet) get a structural schema of the fields used here, and the pod
templates inside a LeaderWorkerSet are validated as core Pod specs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.helpers import (
    ROOT,
    load_all_yaml,
    run_ok,
    settings_env_names,
    shutdown_overhead,
    tool,
)
from tests.deploy.test_docker import STAGES

K8S = ROOT / "k8s"
OVERLAYS = ("base", "overlays/cpu", "overlays/gpu")
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
NAMESPACE = "llm-gateway"
CORE_GROUPS = {"", "apps", "policy", "autoscaling", "batch", "networking.k8s.io"}

Doc = dict[str, Any]


def group(doc: Doc) -> str:
    api_version: str = doc["apiVersion"]
    return api_version.rpartition("/")[0]


def manifest_files() -> list[Path]:
    """Whole manifests: not kustomizations, not the partial patches merged into the base."""
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith("-patch.yaml")
    )


def file_docs() -> list[tuple[str, Doc]]:
    return [
        (f"{p.relative_to(K8S)}#{i}", doc)
        for p in manifest_files()
        for i, doc in enumerate(load_all_yaml(p.read_text()))
    ]


@cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    out = run_ok(tool("kubectl"), "kustomize", str(K8S / overlay))
    return tuple(load_all_yaml(out))


def the(docs: tuple[Doc, ...], kind: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


# --- Custom resources: the fields this repository uses, with their types. Unknown fields are
# rejected where the CRD's own schema rejects them, so a typo fails here as it would on apply.
_STR = {"type": "string"}
_INT = {"type": "integer"}
_LABELS = {"type": "object", "additionalProperties": _STR}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _LABELS, "annotations": _LABELS},
    "additionalProperties": False,
}
_SELECTOR = {
    "type": "object",
    "required": ["matchLabels"],
    "properties": {"matchLabels": {**_LABELS, "minProperties": 1}},
    "additionalProperties": False,
}
_HPA_RULES = {
    "type": "object",
    "properties": {
        "stabilizationWindowSeconds": _INT,
        "selectPolicy": _STR,
        "policies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "value", "periodSeconds"],
                "properties": {
                    "type": {"enum": ["Pods", "Percent"]},
                    "value": _INT,
                    "periodSeconds": _INT,
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
_POD_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["containers"]},
    },
    "additionalProperties": False,
}


def _cr(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
        "additionalProperties": False,
    }


CR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _cr(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": _STR,
                            "path": _STR,
                            "interval": {"type": "string", "pattern": r"^\d+(s|m)$"},
                            "scrapeTimeout": {"type": "string", "pattern": r"^\d+(s|m)$"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    "ScaledObject": _cr(
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR},
                    "additionalProperties": False,
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": _INT,
                "cooldownPeriod": _INT,
                "advanced": {
                    "type": "object",
                    "properties": {
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {
                                "behavior": {
                                    "type": "object",
                                    "properties": {"scaleUp": _HPA_RULES, "scaleDown": _HPA_RULES},
                                    "additionalProperties": False,
                                }
                            },
                            "additionalProperties": False,
                        }
                    },
                    "additionalProperties": False,
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": _STR,
                            "name": _STR,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            # KEDA's trigger metadata is a map of strings.
                            "metadata": {"type": "object", "additionalProperties": _STR},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    "LeaderWorkerSet": _cr(
        "leaderworkerset.x-k8s.io/v1",
        "LeaderWorkerSet",
        {
            "type": "object",
            "required": ["leaderWorkerTemplate"],
            "properties": {
                "replicas": _INT,
                "startupPolicy": {"enum": ["LeaderCreated", "LeaderReady"]},
                "rolloutStrategy": {"type": "object"},
                "leaderWorkerTemplate": {
                    "type": "object",
                    "required": ["size", "workerTemplate"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "restartPolicy": {"enum": ["RecreateGroupOnPodRestart", "None"]},
                        "leaderTemplate": _POD_TEMPLATE,
                        "workerTemplate": _POD_TEMPLATE,
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    ),
}


def validate(doc: Doc) -> None:
    if group(doc) in CORE_GROUPS:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    else:
        jsonschema.validate(doc, CR_SCHEMAS[doc["kind"]])
        if doc["kind"] == "LeaderWorkerSet":
            template = doc["spec"]["leaderWorkerTemplate"]
            for role in ("leaderTemplate", "workerTemplate"):
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": role},
                    "spec": template[role]["spec"],
                }
                for version in KUBERNETES_VERSIONS:
                    kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("name,doc", file_docs(), ids=[n for n, _ in file_docs()])
def test_manifest_file_is_valid(name: str, doc: Doc) -> None:
    validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_is_valid(overlay: str) -> None:
    docs = rendered(overlay)
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "ScaledObject",
    }
    for doc in docs:
        validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_validation_catches_a_misplaced_field() -> None:
    deployment = the(rendered("base"), "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "terminationGracePeriod": 60}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    service_monitor = the(rendered("base"), "ServiceMonitor")
    with pytest.raises(jsonschema.ValidationError):
        validate({**service_monitor, "spec": {**service_monitor["spec"], "endpoint": []}})


# --- What the deployment needs, on each rendered overlay.


def container(docs: tuple[Doc, ...]) -> Doc:
    (gateway,) = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: Doc = gateway
    return result


def settings_of(docs: tuple[Doc, ...]) -> dict[str, str]:
    """The ConfigMap the gateway container reads (by the generated, hashed name)."""
    (ref,) = container(docs)["envFrom"]
    name = ref["configMapRef"]["name"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    data: dict[str, str] = config["data"]
    return data


def probe_budget(probe: Doc) -> int:
    period: int = probe.get("periodSeconds", 10)
    failures: int = probe.get("failureThreshold", 3)
    return period * failures


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes(overlay: str) -> None:
    gateway = container(rendered(overlay))
    port = int(settings_of(rendered(overlay))["GATEWAY_PORT"])
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    for kind, path in (("startup", "/ready"), ("readiness", "/ready"), ("liveness", "/health")):
        probe = gateway[f"{kind}Probe"]["httpGet"]
        assert probe["path"] == path, kind
        assert ports[probe["port"]] == port, kind
    minimum = 1800 if overlay.endswith("gpu") else 600  # GPU: the first start downloads a model
    assert probe_budget(gateway["startupProbe"]) >= minimum


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_outlasts_prestop_and_drain(overlay: str) -> None:
    docs = rendered(overlay)
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    command = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = float(settings_of(docs)["GATEWAY_DRAIN_TIMEOUT_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + drain + shutdown_overhead()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_and_secret(overlay: str) -> None:
    docs = rendered(overlay)
    settings = settings_of(docs)
    unknown = {k for k in settings if k.startswith("GATEWAY_")} - settings_env_names()
    assert not unknown, f"not settings of service/config.py: {sorted(unknown)}"
    assert settings["GATEWAY_HOST"] == "0.0.0.0"
    env = {e["name"]: e for e in container(docs)["env"]}
    api_keys = env["GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert api_keys["optional"] is True  # auth off until the Secret exists
    assert not any(d["kind"] == "Secret" for d in docs), "no key material in the manifests"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_runs_as_the_image_user(overlay: str) -> None:
    pod = the(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    uid = STAGES["cpu"].last("USER").split(":")[0]
    assert STAGES["gpu"].last("USER").split(":")[0] == uid
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert pod["enableServiceLinks"] is False  # a Service named `gateway` would set GATEWAY_PORT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_pdb_monitor_and_scaler_select_the_pods(overlay: str) -> None:
    docs = rendered(overlay)
    deployment = the(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = the(docs, "Service")

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(the(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    container_ports = {p["name"] for p in container(docs)["ports"]}
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert all(p["targetPort"] in container_ports for p in service_ports.values())

    monitor = the(docs, "ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    metrics_port = settings_of(docs).get("GATEWAY_METRICS_PORT", settings_of(docs)["GATEWAY_PORT"])
    assert endpoint["path"] == "/metrics"
    assert str(service_ports[endpoint["port"]]["port"]) == metrics_port
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == metrics_port

    scaler = the(docs, "ScaledObject")
    assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"]
    triggers = scaler["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"prometheus"}, "scale on queues, not on CPU"
    queries = " ".join(t["metadata"]["query"] for t in triggers)
    assert "gateway_queue_depth" in queries and "vllm:num_requests_waiting" in queries
    assert all(float(t["metadata"]["threshold"]) > 0 for t in triggers)


def test_cpu_overlay_is_guaranteed_qos_without_gpus() -> None:
    resources = container(rendered("overlays/cpu"))["resources"]
    assert resources["requests"] == resources["limits"]
    assert "nvidia.com/gpu" not in resources["limits"]


def test_gpu_overlay_requests_gpus_and_a_model_cache() -> None:
    docs = rendered("overlays/gpu")
    gateway = container(docs)
    assert gateway["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert gateway["resources"]["limits"]["nvidia.com/gpu"] == 1
    settings = settings_of(docs)
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    volumes = {v["name"]: v for v in the(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    cache_volume = volumes[mounts[settings["GATEWAY_DOWNLOAD_DIR"]]]
    claim = cache_volume["persistentVolumeClaim"]["claimName"]
    assert the(docs, "PersistentVolumeClaim")["metadata"]["name"] == claim
    assert settings["HF_HOME"].startswith(settings["GATEWAY_DOWNLOAD_DIR"] + "/")
    # One GPU replica batches more: its scaling thresholds follow its max_num_seqs.
    (load, _backlog) = the(docs, "ScaledObject")["spec"]["triggers"]
    assert load["metadata"]["threshold"] == settings["GATEWAY_MAX_NUM_SEQS"]


def test_cpu_scaling_threshold_follows_max_num_seqs() -> None:
    docs = rendered("overlays/cpu")
    (load, _backlog) = the(docs, "ScaledObject")["spec"]["triggers"]
    assert load["metadata"]["threshold"] == settings_of(docs)["GATEWAY_MAX_NUM_SEQS"]


def test_multinode_example_adds_up() -> None:
    """The LeaderWorkerSet sketch: Ray backend, and TP x PP = GPUs in one group."""
    docs = tuple(load_all_yaml((K8S / "examples" / "multinode-leaderworkerset.yaml").read_text()))
    lws = the(docs, "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in leader["env"]}
    assert set(env) <= settings_env_names() | {"HF_TOKEN"}
    assert env["GATEWAY_DISTRIBUTED_EXECUTOR_BACKEND"] == "ray"
    gpus = [c["resources"]["limits"]["nvidia.com/gpu"] for c in (leader, worker)]
    assert gpus[0] == gpus[1]
    group_gpus = template["size"] * gpus[0]
    parallel = int(env["GATEWAY_TENSOR_PARALLEL_SIZE"]) * int(env["GATEWAY_PIPELINE_PARALLEL_SIZE"])
    assert parallel == group_gpus
    script = leader["args"][0]
    assert f'get("GPU", 0) < {group_gpus}' in script
    assert script.strip().splitlines()[-1] == "exec python3 -m service"
    assert leader["readinessProbe"]["httpGet"]["path"] == "/ready"
    drain = float(env["GATEWAY_DRAIN_TIMEOUT_SECONDS"] or 0)
    sleep = int(leader["lifecycle"]["preStop"]["exec"]["command"][1])
    grace = template["leaderTemplate"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > sleep + drain + shutdown_overhead()
    service = the(docs, "Service")
    assert service["spec"]["selector"] == template["leaderTemplate"]["metadata"]["labels"]
