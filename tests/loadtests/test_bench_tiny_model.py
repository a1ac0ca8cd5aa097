"""The A/B benchmark's tiny mode without vLLM: the tiny model it builds from the prepared default
model (its config, its head size, that transformers loads it), and the mode's settings."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from loadtests.bench.config import from_args
from loadtests.bench.servers import render
from loadtests.bench.tiny import TINY_MODEL_NAME, TinyShape, ensure_tiny_model, tiny_model_dir
from service.config import Settings
from service.weights import resolve_model


@pytest.fixture(scope="module")
def source() -> Path:
    folder = Path(resolve_model(Settings()))
    assert (folder / "config.json").is_file(), "the default model is prepared by `make test`"
    return folder


@pytest.fixture(scope="module")
def tiny(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(source, tmp_path_factory.mktemp("cache"))


def test_the_config_is_the_default_models_cut_to_two_layers_of_width_128(
    source: Path, tiny: Path
) -> None:
    config, original = AutoConfig.from_pretrained(tiny), AutoConfig.from_pretrained(source)
    assert config.num_hidden_layers == 2
    assert config.hidden_size == 128
    assert config.intermediate_size == 512
    assert (config.num_attention_heads, config.num_key_value_heads) == (2, 2)
    # vLLM's CPU attention kernel refuses head size 16: the width is 2 heads of 64.
    assert config.head_dim == config.hidden_size // config.num_attention_heads == 64
    assert config.dtype == torch.float32
    for kept in ("model_type", "vocab_size", "max_position_embeddings", "rope_parameters"):
        assert getattr(config, kept) == getattr(original, kept), kept
    assert config.tie_word_embeddings and original.tie_word_embeddings


def test_transformers_loads_it_and_it_generates(tiny: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) < 8_000_000  # 6.3 M of it the embedding
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    out = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


def test_it_keeps_the_default_models_tokenizer_and_chat_template(source: Path, tiny: Path) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ours, theirs = AutoTokenizer.from_pretrained(tiny), AutoTokenizer.from_pretrained(source)
    assert ours.apply_chat_template(messages, tokenize=False) == theirs.apply_chat_template(
        messages, tokenize=False
    )
    assert ours("a short sentence")["input_ids"] == theirs("a short sentence")["input_ids"]


def test_the_weights_come_from_the_seed_and_the_folder_is_built_once(
    source: Path, tiny: Path, tmp_path: Path
) -> None:
    weights = tiny / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert ensure_tiny_model(source, tiny.parent) == tiny
    assert weights.stat().st_mtime_ns == written  # reused, not rebuilt
    again = ensure_tiny_model(source, tmp_path)
    first, second = load_file(weights), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert first["model.embed_tokens.weight"].std() > 0  # random, not zeros


def test_the_folder_name_follows_the_recipe(source: Path, tmp_path: Path) -> None:
    default = tiny_model_dir(source, tmp_path)
    assert tiny_model_dir(source, tmp_path, TinyShape(seed=1)) != default
    assert tiny_model_dir(source, tmp_path, TinyShape(num_hidden_layers=4)) != default
    assert default == tiny_model_dir(source, tmp_path, TinyShape())


def test_the_tiny_mode_runs_issue_24s_first_form() -> None:
    config = from_args(["--tiny-model"])
    assert config.tiny_model and config.model_name == TINY_MODEL_NAME
    assert (config.concurrency, config.rates, config.pairs) == ((64,), (), 3)
    assert config.concurrency[0] * config.requests_per_user == 256
    assert config.output_len == 128
    assert config.out_dir.name.endswith("-tiny")
    engine = config.engine
    assert (engine.dtype, engine.enforce_eager, engine.max_num_seqs) == ("float32", True, 128)
    assert engine.environment() == {"VLLM_CPU_KVCACHE_SPACE": "4"}
    a, b = (
        shlex.split(render(s.command, engine, model_dir="/m", model_name="tiny", port=1))
        for s in config.servers
    )
    assert a[a.index("--model") + 1] == b[b.index("--model") + 1] == "/m"
    assert b[b.index("--cpu-kvcache-space") + 1] == "4"
    assert b[b.index("--embedding-model") + 1] == "none"
    assert float(b[b.index("--max-queue-wait-seconds") + 1]) >= 3600
    for flags in (a, b):
        assert flags[flags.index("--max-num-seqs") + 1] == "128"
        assert flags[flags.index("--dtype") + 1] == "float32"
    # explicit flags still win over the mode's defaults
    custom = from_args(["--tiny-model", "--concurrency", "16,64", "--cpu-kvcache-gib", "2"])
    assert custom.concurrency == (16, 64) and custom.engine.cpu_kvcache_gib == 2


@pytest.mark.parametrize(
    "flags", [["--tiny-model", "--quick"], ["--tiny-model", "--model-dir", "/m"]]
)
def test_the_tiny_mode_refuses_flags_it_overrides(flags: list[str]) -> None:
    with pytest.raises(SystemExit):
        from_args(flags)
