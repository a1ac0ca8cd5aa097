"""Structural schemas of the Gateway API Inference Extension resources used in
k8s/overlays/inference-pool: the fields this repository uses, with their types and the CRDs'
enums and bounds (InferencePool from `api/v1/inferencepool_types.go` of
kubernetes-sigs/gateway-api-inference-extension, HTTPRoute from gateway.networking.k8s.io/v1,
and the endpoint picker's EndpointPickerConfig file). Unknown fields are rejected, as the CRDs'
own schemas do, so a typo fails here as it would on apply."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_LABELS = {"type": "object", "additionalProperties": _STR}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _LABELS, "annotations": _LABELS},
    "additionalProperties": False,
}
_DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object(
        ["apiVersion", "kind", "metadata", "spec"],
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
    )


INFERENCE_POOL = _resource(
    "inference.networking.k8s.io/v1",
    "InferencePool",
    _object(
        ["selector", "targetPorts", "endpointPickerRef"],
        {
            "selector": _object(["matchLabels"], {"matchLabels": {**_LABELS, "minProperties": 1}}),
            "targetPorts": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": _object(["number"], {"number": _PORT}),
            },
            "endpointPickerRef": _object(
                ["name"],
                {
                    "group": _STR,
                    "kind": _STR,
                    "name": _STR,
                    "portNumber": _PORT,
                    "failureMode": {"enum": ["FailOpen", "FailClose"]},
                },
            ),
        },
    ),
)

_BACKEND_REF = _object(
    ["name"],
    {
        "group": _STR,
        "kind": _STR,
        "name": _STR,
        "namespace": _STR,
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0},
    },
)
_PATH_MATCH = _object(
    [],
    {
        "path": _object(
            ["value"],
            {
                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                "value": {"type": "string", "pattern": "^/"},
            },
        )
    },
)
HTTP_ROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    _object(
        ["parentRefs", "rules"],
        {
            "parentRefs": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    ["name"],
                    {
                        "group": _STR,
                        "kind": _STR,
                        "name": _STR,
                        "namespace": _STR,
                        "sectionName": _STR,
                    },
                ),
            },
            "hostnames": {"type": "array", "items": _STR},
            "rules": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": _object(
                    ["backendRefs"],
                    {
                        "matches": {"type": "array", "maxItems": 64, "items": _PATH_MATCH},
                        "backendRefs": {"type": "array", "minItems": 1, "items": _BACKEND_REF},
                        "timeouts": _object(
                            [], {"request": _DURATION, "backendRequest": _DURATION}
                        ),
                    },
                ),
            },
        },
    ),
)

ENDPOINT_PICKER_CONFIG = _object(
    ["apiVersion", "kind", "plugins", "schedulingProfiles"],
    {
        "apiVersion": {"const": "inference.networking.x-k8s.io/v1alpha1"},
        "kind": {"const": "EndpointPickerConfig"},
        "plugins": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                ["type"], {"type": _STR, "name": _STR, "parameters": {"type": "object"}}
            ),
        },
        "schedulingProfiles": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                ["name", "plugins"],
                {
                    "name": _STR,
                    "plugins": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object(
                            ["pluginRef"], {"pluginRef": _STR, "weight": {"type": "integer"}}
                        ),
                    },
                },
            ),
        },
    },
)

GATEWAY_API_SCHEMAS: dict[str, dict[str, Any]] = {
    "InferencePool": INFERENCE_POOL,
    "HTTPRoute": HTTP_ROUTE,
    "EndpointPickerConfig": ENDPOINT_PICKER_CONFIG,
}
