"""The client package itself: configuration from the environment, its import graph, and that its
parameters match the server's request models field for field."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import llm_gateway
from llm_gateway import AsyncClient, Client, types
from service.schemas import tasks as schemas

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = ("LLM_GATEWAY_API_KEY", "OPENAI_API_KEY", "LLM_GATEWAY_BASE_URL", "OPENAI_BASE_URL")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_defaults_need_no_key(clean_env: pytest.MonkeyPatch, cls: type[Any]) -> None:
    client = cls()
    assert isinstance(client, openai.OpenAI | openai.AsyncOpenAI)
    assert str(client.base_url) == "http://localhost:8000/v1/"
    assert client.api_key  # a placeholder: the SDK refuses an empty key


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_gateway_variables_win_over_openai_ones(
    clean_env: pytest.MonkeyPatch, cls: type[Any]
) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-openai")
    clean_env.setenv("OPENAI_BASE_URL", "http://openai-var:1/v1")
    client = cls()
    assert client.api_key == "sk-openai"
    assert str(client.base_url) == "http://openai-var:1/v1/"
    clean_env.setenv("LLM_GATEWAY_API_KEY", "sk-gateway")
    clean_env.setenv("LLM_GATEWAY_BASE_URL", "http://gateway-var:2/v1")
    client = cls()
    assert client.api_key == "sk-gateway"
    assert str(client.base_url) == "http://gateway-var:2/v1/"
    client = cls(api_key="sk-arg", base_url="http://arg:3/v1")
    assert client.api_key == "sk-arg"
    assert str(client.base_url) == "http://arg:3/v1/"


def test_copies_keep_the_class_and_settings(clean_env: pytest.MonkeyPatch) -> None:
    client = Client(api_key="sk-arg", base_url="http://arg:3/v1", max_retries=4)
    copy = client.with_options(timeout=5)
    assert isinstance(copy, Client)
    assert copy.api_key == "sk-arg" and str(copy.base_url) == "http://arg:3/v1/"
    assert copy.max_retries == 4 and copy.timeout == 5
    assert copy.tasks is not client.tasks


# --------------------------------------------------------------------------- drift
# Request fields the client methods do not take as keywords: `stream` is the methods' own
# flag, and `timeout` keeps the openai SDK's meaning (the client's HTTP timeout); the server's
# per-request deadline goes in `extra_body={"timeout": s}` or the `x-request-timeout` header.
NOT_KEYWORDS = {"stream", "timeout"}


@pytest.mark.parametrize(
    ("params", "request_model"),
    [
        (types.GenerateParams, schemas.GenerateRequest),
        (types.SummarizeParams, schemas.SummarizeRequest),
        (types.ClassifyParams, schemas.ClassifyRequest),
        (types.ChatParams, schemas.TaskChatRequest),
    ],
)
def test_method_keywords_are_the_request_fields(
    params: Any, request_model: type[BaseModel]
) -> None:
    keywords = set(params.__optional_keys__) - types.CALL_OPTIONS
    assert keywords == set(request_model.model_fields) - NOT_KEYWORDS


@pytest.mark.parametrize(
    ("client_model", "server_model"),
    [
        (types.GenerateResponse, schemas.GenerateResponse),
        (types.SummarizeResponse, schemas.SummarizeResponse),
        (types.ClassifyResponse, schemas.ClassifyResponse),
        (types.ChatResponse, schemas.ChatResponse),
        (types.TaskChunk, schemas.TaskChunk),
    ],
)
def test_results_are_the_servers_models(
    client_model: type[BaseModel], server_model: type[BaseModel]
) -> None:
    assert issubclass(client_model, server_model)
    assert client_model.model_fields.keys() == server_model.model_fields.keys()
    assert (
        client_model.model_json_schema()["properties"]
        == server_model.model_json_schema()["properties"]
    )


# --------------------------------------------------------------------------- import graph
HEAVY = ["vllm", "torch", "transformers", "fastapi", "starlette", "uvicorn", "sse_starlette"]
SERVER_MODULES = ["service.app", "service.engine", "service.engine.vllm", "service.config"]

PROBE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    HEAVY = set(json.loads(sys.argv[1]))

    class NotInstalled(importlib.abc.MetaPathFinder):
        # As if vLLM, torch and the web stack were not installed at all.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())

    import llm_gateway
    from llm_gateway import AsyncClient, Client

    Client(base_url="http://127.0.0.1:9/v1").tasks
    AsyncClient(base_url="http://127.0.0.1:9/v1").tasks
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_the_client_imports_without_vllm_torch_or_the_web_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    heavy = {m for m in loaded if m.split(".")[0] in HEAVY}
    assert not heavy
    assert not loaded & set(SERVER_MODULES)
    assert "service.schemas.tasks" in loaded  # the shared models, and only those


def test_the_package_exports() -> None:
    for name in llm_gateway.__all__:
        assert hasattr(llm_gateway, name), name
    assert issubclass(llm_gateway.BadRequestError, openai.APIStatusError)
