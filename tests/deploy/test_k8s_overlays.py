"""What the gateway's Deployment needs, on each rendered overlay (k8s/base, overlays/cpu,
overlays/gpu): probes, graceful termination, settings and the key Secret, the image's user,
selectors for the Service, PDB, ServiceMonitor and scaler, and the CPU/GPU specifics.
"""

from __future__ import annotations

import pytest

from tests.deploy.helpers import (
    OVERLAYS,
    Doc,
    container,
    rendered,
    settings_env_names,
    settings_of,
    shutdown_overhead,
    the,
)
from tests.deploy.test_docker import STAGES


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
    assert not unknown, f"not settings of service/config: {sorted(unknown)}"
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
