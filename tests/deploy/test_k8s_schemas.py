"""Kubernetes manifests (k8s/) against their schemas, offline: every file and every rendered
overlay.

Core kinds are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict: no
unknown fields) against the oldest and newest versions it ships. Custom resources (ServiceMonitor,
ScaledObject, LeaderWorkerSet; InferencePool, HTTPRoute and the endpoint picker's config in
`gateway_api_schemas.py`) get a structural schema of the fields used here, and the pod templates
inside a LeaderWorkerSet are validated as core Pod specs.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.gateway_api_schemas import GATEWAY_API_SCHEMAS
from tests.deploy.helpers import OVERLAYS, Doc, file_docs, rendered, the

KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
NAMESPACE = "llm-gateway"
CORE_GROUPS = {
    "",
    "apps",
    "policy",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}


def group(doc: Doc) -> str:
    api_version: str = doc["apiVersion"]
    return api_version.rpartition("/")[0]


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
    **GATEWAY_API_SCHEMAS,
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
