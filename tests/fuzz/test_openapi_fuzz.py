"""Property-based fuzz of every operation in the OpenAPI schema, in process on the fake engine.

Schemathesis reads the app's own OpenAPI document and, per operation, runs its coverage phase
(boundary and schema-violating values, deterministic) and a Hypothesis fuzzing phase (capped at
`MAX_EXAMPLES`, derandomized so CI runs the same cases every time). Every response must be free
of 5xx, every 4xx must be OpenAI's error shape with a message, and every JSON 200 must match the
documented response schema. `-s` prints the cases run per operation and their statuses.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.conftest import FAKE_MODEL
from tests.fuzz.checks import CHECKS, Tally, use_served_model

MAX_EXAMPLES = 100
TALLY = Tally()


def new_app() -> FastAPI:
    # One name for both models: the fuzzer's `model` reaches the embedding endpoints too.
    settings = Settings(model=FAKE_MODEL, embedding_model=FAKE_MODEL, default_max_tokens=16)
    return create_app(settings, engine_factory=FakeEngine, embedding_factory=FakeEmbeddingEngine)


# Schemathesis ends an ASGI app's lifespan after every test item, and an engine does not start
# twice: the schema comes from one app, and each operation's test gets a fresh, started one.
# Explicit, so that no schemathesis.toml found on disk changes what CI runs.
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}}}
)
schema = schemathesis.openapi.from_dict(new_app().openapi(), config=CONFIG)


@pytest.fixture
def fuzz_app() -> FastAPI:
    app = new_app()
    # schemathesis types ASGI messages as dict, Starlette as MutableMapping (dicts at runtime).
    client = asgi.get_client(app)  # type: ignore[arg-type]  # dict vs Starlette's MutableMapping
    with client:  # starts the lifespan; it lives until the teardown
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "the fake engine did not start"
            time.sleep(0.01)
    return app


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation(case: Any, fuzz_app: FastAPI) -> None:
    use_served_model(case, FAKE_MODEL)
    response = case.call_and_validate(app=fuzz_app, checks=CHECKS)
    TALLY.record(case, response.status_code)


def test_zz_every_operation_was_fuzzed() -> None:
    """Runs last in the module: each operation got cases (printed with -s)."""
    print("\n" + TALLY.report())
    if not TALLY.cases:
        pytest.skip("the fuzz did not run in this session (deselected)")
    operations = {op.label for op in schema.get_all_operations() if hasattr(op, "label")}
    assert operations <= set(TALLY.cases)
