"""A small schema-driven fuzz against the real engine: a few cases per operation, no 5xx.

The fast suite (tests/fuzz) covers every operation at length on the fake engine; this sample
checks that what passes the gateway's validation does not make vLLM or torch fail (huge
integers, odd sampling values, structured-output specs...). Each generating body gets a
`timeout` when it has none (the Messages API's an `x-request-timeout` header), so a fuzzed
max_tokens cannot hold the session for minutes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from service.schemas.common import MAX_INT32
from tests.fuzz.checks import CHECKS, Tally, set_deadline, use_served_model
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

EXAMPLES_PER_OPERATION = 6
CASE_TIMEOUT = 30.0  # seconds, the request's own deadline
TALLY = Tally()

# The schema only: no lifespan runs, so no engine starts for it.
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(**TEST_PROFILE)).openapi(), config=CONFIG
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_on_the_real_engine(case: Any, live_server: LiveServer) -> None:
    use_served_model(case, live_server.model)
    set_deadline(case, CASE_TIMEOUT)
    response = case.call_and_validate(
        base_url=live_server.base_url, checks=CHECKS, timeout=CASE_TIMEOUT * 4
    )
    TALLY.record(case, response.status_code)


# The schemas' bounds, at the bound: what passes validation must not fail inside vLLM or torch.
CHAT, COMPLETIONS, GENERATE = "/v1/chat/completions", "/v1/completions", "/v1/generate"
MESSAGES = "/v1/messages"
AT_THE_BOUNDS = [
    pytest.param(CHAT, {"top_k": MAX_INT32, "temperature": 1}, id="top_k-int32"),
    pytest.param(CHAT, {"seed": -(2**63), "temperature": 1}, id="seed-min-int64"),
    pytest.param(CHAT, {"seed": 2**63 - 1, "temperature": 1}, id="seed-max-int64"),
    pytest.param(CHAT, {"stop_token_ids": [MAX_INT32]}, id="stop_token_id-int32"),
    pytest.param(CHAT, {"logit_bias": {str(MAX_INT32): 5}}, id="logit_bias-int32"),
    pytest.param(CHAT, {"min_p": 1.0, "temperature": 2.0, "top_p": 1e-9}, id="extreme-sampling"),
    pytest.param(CHAT, {"n": 8, "temperature": 1}, id="n-8"),
    pytest.param(CHAT, {"structured_outputs": {"choice": ["a", "b"]}}, id="choice"),
    pytest.param(CHAT, {"structured_outputs": {"regex": "[0-9]{2}"}}, id="regex"),
    pytest.param(MESSAGES, {"top_k": MAX_INT32, "temperature": 1}, id="messages-top_k-int32"),
    pytest.param(MESSAGES, {"temperature": 1.0, "top_p": 1e-9}, id="messages-extreme-sampling"),
    pytest.param(COMPLETIONS, {"prompt": [MAX_INT32]}, id="prompt-token-id-int32"),
    pytest.param(COMPLETIONS, {"prompt": [1, 2], "echo": True, "logprobs": 20}, id="echo-logprobs"),
    pytest.param(
        GENERATE, {"num_beams": 2, "length_penalty": 10.0, "max_new_tokens": 4}, id="beams-lp10"
    ),
    pytest.param(
        GENERATE, {"num_beams": 2, "length_penalty": -10.0, "max_new_tokens": 4}, id="beams-lp-10"
    ),
    pytest.param(
        GENERATE, {"do_sample": True, "top_k": MAX_INT32, "max_new_tokens": 4}, id="hf-top_k"
    ),
]


@pytest.mark.parametrize(("path", "fields"), AT_THE_BOUNDS)
def test_values_at_the_schema_bounds_are_served_or_refused_cleanly(
    live_server: LiveServer, path: str, fields: dict[str, Any]
) -> None:
    base: dict[str, Any] = {"model": live_server.model, "max_tokens": 4, "timeout": CASE_TIMEOUT}
    headers = {}
    if path in (CHAT, MESSAGES):
        base["messages"] = [{"role": "user", "content": "Count to three."}]
    elif path == COMPLETIONS:
        base["prompt"] = "1, 2,"
    else:
        base = {"prompt": "1, 2,", "timeout": CASE_TIMEOUT}
    if path == MESSAGES:  # no timeout field in Anthropic's body: the header instead
        headers["x-request-timeout"] = str(base.pop("timeout"))
    response = httpx.post(
        f"{live_server.base_url}{path}", json={**base, **fields}, headers=headers, timeout=120
    )
    # Served, or a 400 in OpenAI's shape (vLLM's own check of a token id against the vocabulary).
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400 and path == MESSAGES:
        assert response.json()["error"]["type"] == "invalid_request_error", response.text
    elif response.status_code == 400:
        error = response.json()["error"]
        assert error["message"] and error["type"] == "invalid_request_error", error


def test_zz_report() -> None:
    print("\n" + TALLY.report())
