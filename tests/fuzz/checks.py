"""What every fuzzed response must satisfy, shared by the fake-engine and real-engine fuzz."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from schemathesis.specs.openapi.checks import response_schema_conformance

# The model is free text in the schema: a random one is nearly always a 404, which would stop
# the fuzz at the model check. Most cases get the served one instead (`use_served_model`).
MODEL_FIELD = "model"


def _content_type(response: Any) -> str:
    value = response.headers.get("content-type", [""])
    return str(value[0] if isinstance(value, list) else value)


# Anthropic's Messages API answers its errors in Anthropic's shape.
MESSAGES_PATH = "/v1/messages"
TIMEOUT_HEADER = "x-request-timeout"


def on_messages_surface(case: Any) -> bool:
    return str(case.operation.path).startswith(MESSAGES_PATH)


def set_deadline(case: Any, seconds: float) -> None:
    """A deadline for a generating case: the body's `timeout`, or (Messages API, whose body has
    no such field) the `x-request-timeout` header."""
    if on_messages_surface(case):
        case.headers = {**(case.headers or {}), TIMEOUT_HEADER: str(seconds)}
    elif isinstance(case.body, dict) and case.body.get("timeout") is None:
        case.body["timeout"] = seconds


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the 504 of a request that set its own (fuzzed, tiny) `timeout`."""
    if response.status_code < 500:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    deadline = body.get("timeout") is not None or TIMEOUT_HEADER in (case.headers or {})
    if response.status_code == 504 and deadline:
        return True
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


def _anthropic_error_shape(body: Any) -> bool:
    """{"type": "error", "error": {type, message}, "request_id"}."""
    assert isinstance(body, dict) and body.get("type") == "error", body
    assert set(body) <= {"type", "error", "request_id"}, body
    error = body["error"]
    assert set(error) == {"type", "message"}, error
    assert isinstance(error["type"], str) and error["type"], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    return True


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is the surface's error body: OpenAI's {"error": {message, type, param, code}},
    or Anthropic's under /v1/messages."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = _content_type(response)
    assert content_type.startswith("application/json"), f"4xx content-type {content_type!r}"
    body = json.loads(response.content)
    if on_messages_surface(case):
        return _anthropic_error_shape(body)
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    assert isinstance(error["type"], str), error
    assert error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return True


def json_schema_conformance(ctx: Any, response: Any, case: Any) -> bool | None:
    """The documented schema for JSON successes (streams are SSE, outside the schema)."""
    if response.status_code != 200 or not _content_type(response).startswith("application/json"):
        return None
    return response_schema_conformance(ctx, response, case)


CHECKS = [no_server_error, error_shape, json_schema_conformance]


def use_served_model(case: Any, model: str) -> None:
    """Most bodies name the served model (3 in 4, chosen from the body itself: deterministic)."""
    body = case.body
    named = isinstance(body, dict) and isinstance(body.get(MODEL_FIELD), str)
    if named and len(repr(sorted(body))) % 4 != 0:
        body[MODEL_FIELD] = model


@dataclass
class Tally:
    """Cases and statuses per operation, for the report at the end of a fuzz run."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    phases: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, case: Any, status: int) -> None:
        self.cases[case.operation.label] += 1
        self.statuses[(case.operation.label, status)] += 1
        phase = case.meta.phase.name.value if case.meta is not None else "explicit"
        self.phases[(case.operation.label, phase)] += 1

    def report(self) -> str:
        lines = []
        for label, count in sorted(self.cases.items()):
            by_status = {s: n for (op, s), n in sorted(self.statuses.items()) if op == label}
            by_phase = {p: n for (op, p), n in sorted(self.phases.items()) if op == label}
            lines.append(f"{label}: {count} cases {by_phase}, statuses {by_status}")
        lines.append(f"total: {sum(self.cases.values())} cases")
        return "\n".join(lines)
