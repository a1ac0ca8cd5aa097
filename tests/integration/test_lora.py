"""LoRA adapters on the real engine, with API keys on: an adapter served from the start and
one loaded at runtime change greedy output; unloading returns to the base model.

This module starts its own engine with LoRA on instead of turning LoRA on in the shared test
engine: `enable_lora` wraps every linear layer in LoRA layers for every request, and the
shared engine is also the benchmark's and the other tests' reference configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from service.config import TEST_PROFILE, Settings
from service.weights import resolve_model
from tests.integration.conftest import ServerInProcess
from tests.processes import server_process

pytestmark = pytest.mark.engine

ADMIN = {"authorization": "Bearer sk-lora-admin-0123456789"}
USER = {"authorization": "Bearer sk-lora-user-0123456789"}
PROMPT = "The three most important things in life are"


def make_adapter(folder: Path) -> Path:
    """A rank-8 LoRA adapter for the default model with random (non-zero) A and B."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(
        resolve_model(Settings()), torch_dtype=torch.float32
    )
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(base, config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture(scope="module")
def lora_server(
    adapter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerInProcess]:
    """A process of its own (tests/processes.py), like every extra engine: an engine started in
    the test process would take over the shared engine's `vllm:` metric families."""
    folder = tmp_path_factory.mktemp("lora-server")
    keys = folder / "keys.toml"
    keys.write_text(
        f'[[keys]]\nname = "ops"\nkey = "{ADMIN["authorization"][7:]}"\nadmin = true\n'
        f'[[keys]]\nname = "app"\nkey = "{USER["authorization"][7:]}"\n'
    )
    flags = (
        f"--lora-modules=at-start={adapter}",
        "--enable-lora-runtime-updates",
        "--max-lora-rank=8",
        "--max-loras=2",
        f"--api-key-file={keys}",
    )
    with server_process(folder, *flags) as server:
        yield ServerInProcess(server.base_url, Settings(**TEST_PROFILE).model_name)


def greedy(server: ServerInProcess, model: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": model, "prompt": PROMPT, "max_tokens": 12, "temperature": 0},
        headers=USER,
        timeout=120,
    )


def text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    out: str = response.json()["choices"][0]["text"]
    return out


def test_an_adapter_served_from_the_start_changes_greedy_output(
    lora_server: ServerInProcess,
) -> None:
    models = httpx.get(f"{lora_server.base_url}/v1/models", headers=USER, timeout=30).json()
    assert [(m["id"], m["parent"]) for m in models["data"]] == [
        (lora_server.model, None),
        ("at-start", lora_server.model),
    ]
    base = text(greedy(lora_server, lora_server.model))
    assert text(greedy(lora_server, "at-start")) != base
    assert text(greedy(lora_server, lora_server.model)) == base  # the base is untouched
    metrics = httpx.get(f"{lora_server.base_url}/metrics", timeout=30).text
    assert "vllm:lora_requests_info" in metrics  # vLLM's LoRA gauge, exported beside ours


def test_runtime_load_is_admin_only_and_unload_returns_to_base(
    lora_server: ServerInProcess, adapter: Path
) -> None:
    url = lora_server.base_url
    body = {"lora_name": "runtime", "lora_path": str(adapter)}
    refused = httpx.post(f"{url}/v1/load_lora_adapter", json=body, headers=USER, timeout=120)
    assert refused.status_code == 403, refused.text
    loaded = httpx.post(f"{url}/v1/load_lora_adapter", json=body, headers=ADMIN, timeout=120)
    assert loaded.status_code == 200, loaded.text
    base = text(greedy(lora_server, lora_server.model))
    assert text(greedy(lora_server, "runtime")) == text(greedy(lora_server, "at-start")) != base
    unloaded = httpx.post(
        f"{url}/v1/unload_lora_adapter", json={"lora_name": "runtime"}, headers=ADMIN, timeout=60
    )
    assert unloaded.status_code == 200, unloaded.text
    gone = greedy(lora_server, "runtime")
    assert gone.status_code == 404 and gone.json()["error"]["param"] == "model"
    assert text(greedy(lora_server, lora_server.model)) == base


def test_a_failed_load_leaves_the_server_serving(
    lora_server: ServerInProcess, tmp_path: Path
) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")  # a PEFT folder in name only
    response = httpx.post(
        f"{lora_server.base_url}/v1/load_lora_adapter",
        json={"lora_name": "broken", "lora_path": str(tmp_path)},
        headers=ADMIN,
        timeout=120,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "lora_path"
    assert httpx.get(f"{lora_server.base_url}/ready", timeout=30).status_code == 200
    assert greedy(lora_server, lora_server.model).status_code == 200


def test_an_unknown_model_is_a_404_naming_model(lora_server: ServerInProcess) -> None:
    response = greedy(lora_server, "no-such-adapter")
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "model"
