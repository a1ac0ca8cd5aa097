"""The CPU engines' KV-cache sizes: the `auto` formula, the memory cap, the start-up refusal, and
the shape and bytes as vLLM's own config and start-up check see them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import torch

from service.config import Settings
from service.engine.vllm import compat
from service.engine.vllm.args import (
    CPU_BLOCK_SIZE,
    engine_kwargs,
    kv_cache_sizer,
    pooling_engine_kwargs,
)
from service.engine.vllm.kv_cache import (
    GIB,
    KVCacheTooSmallError,
    KVShape,
    machine_memory_bytes,
    plan,
)
from tests.unit.engine.test_vllm_model_runner import TINY_LLAMA

# The default model on CPU, as vLLM resolves it under `make serve`'s defaults.
SMOLLM2 = KVShape(
    layers=30,
    kv_heads=3,
    head_size=64,
    dtype_bytes=4,
    block_size=CPU_BLOCK_SIZE,  # the gateway's CPU default (vLLM's own is 128)
    max_model_len=8192,
    max_num_seqs=128,
)
MACHINE = 24 * GIB


def auto(purpose: Any = "generation", shape: KVShape = SMOLLM2, **kwargs: Any) -> Any:
    options = {"memory_bytes": MACHINE, "memory_share": 0.02, **kwargs}
    return plan(purpose, setting="cpu_kvcache_space", value="auto", shape=shape, **options)


def test_a_token_costs_layers_x_kv_heads_x_head_size_x_2_x_dtype_bytes() -> None:
    assert SMOLLM2.bytes_per_token == 30 * 3 * 64 * 2 * 4 == 46_080
    # One request at 8192 tokens: 256 blocks of 32, and the one vLLM keeps back.
    assert SMOLLM2.min_bytes == 257 * 32 * 46_080


def test_auto_holds_every_sequence_at_full_context_when_the_memory_share_allows() -> None:
    small = KVShape(30, 3, 64, 4, 128, max_model_len=1024, max_num_seqs=4)
    result = auto(shape=small)
    assert result.blocks == 4 * 1024 // 128 + 1
    assert result.tokens == 4 * 1024
    assert result.capped_at is None


def test_auto_is_capped_at_the_memory_share() -> None:
    result = auto()  # 128 x 8192 tokens would be 45 GiB
    cap = int(0.02 * MACHINE)
    assert result.capped_at == cap
    assert cap - SMOLLM2.bytes_per_block < result.bytes <= cap
    assert result.tokens > SMOLLM2.max_model_len
    assert "capped at 0.48 GiB" in result.describe()


def test_auto_holds_one_full_request_even_past_the_memory_share() -> None:
    """A laptop's share may be smaller than one request at max_model_len: the engine still
    starts (with a warning from the sizer), rather than fail on its default."""
    result = auto(memory_bytes=8 * GIB, memory_share=0.01)
    assert result.bytes == SMOLLM2.min_bytes
    assert result.tokens == SMOLLM2.max_model_len
    assert result.above_share


def test_the_embedding_engine_holds_one_input_at_full_context() -> None:
    result = auto("embedding")
    assert result.bytes == SMOLLM2.min_bytes
    assert result.tokens == 8192
    assert "max_model_len 8192 tokens" in result.describe()


def test_an_explicit_size_wins_over_auto_and_the_share() -> None:
    result = plan(
        "generation",
        setting="cpu_kvcache_space",
        value=4,
        shape=SMOLLM2,
        memory_bytes=MACHINE,
        memory_share=0.02,
    )
    assert result.bytes == (4 * GIB // SMOLLM2.bytes_per_block) * SMOLLM2.bytes_per_block
    assert result.tokens == 93_152  # about 90,000, as the fixed 4 GiB held before `auto`
    assert "cpu_kvcache_space=4 GiB" in result.describe()


def test_a_size_that_cannot_hold_one_request_stops_the_start_and_says_why() -> None:
    with pytest.raises(KVCacheTooSmallError) as refused:
        plan(
            "embedding",
            setting="embedding_cpu_kvcache_space",
            value=0.25,
            shape=SMOLLM2,
            memory_bytes=MACHINE,
            memory_share=0.02,
        )
    message = str(refused.value)
    assert message.startswith("embedding_cpu_kvcache_space=0.25 GiB holds 5,792 tokens")
    assert "46,080 bytes a token" in message
    assert "max_model_len 8192 needs (0.35 GiB)" in message
    assert "at least 0.36" in message


def test_the_log_line_gives_the_tokens_and_the_formula() -> None:
    line = auto().describe()
    assert line.startswith("generation engine KV cache: 0.48 GiB, 11,136 tokens (349 blocks of 32")
    assert "46,080 bytes a token (30 layers x 3 KV heads x 64 x 2 x 4 bytes)" in line
    assert "max_num_seqs 128 x max_model_len 8192 tokens" in line


def test_the_minimum_is_vllms_own_start_up_check(tmp_path: Path) -> None:
    """`min_bytes` passes vLLM's check that one request at max_model_len fits, and a byte less
    fails it: the gateway refuses exactly what vLLM would, but first and in its own words."""
    from vllm.v1.core.kv_cache_utils import check_enough_kv_cache_memory
    from vllm.v1.kv_cache_interface import FullAttentionSpec

    config = tiny_config(tmp_path, max_model_len=500)
    config.cache_config.kv_cache_layout = "LBHNC"  # the CPU engine core's choice (its log says)
    shape = compat.kv_shape(config)
    specs = {
        f"model.layers.{i}.self_attn.attn": FullAttentionSpec(
            block_size=shape.block_size,
            num_kv_heads=shape.kv_heads,
            head_size=shape.head_size,
            dtype=torch.float32,
        )
        for i in range(shape.layers)
    }
    check_enough_kv_cache_memory(config, specs, shape.min_bytes)
    with pytest.raises(ValueError, match="max seq len"):
        check_enough_kv_cache_memory(config, specs, shape.min_bytes - 1)


def tiny_config(tmp_path: Path, **engine_args: Any) -> Any:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    args = {"model": str(tmp_path), "dtype": "float32", "enforce_eager": True, **engine_args}
    return compat.AsyncEngineArgs(**args).create_engine_config(compat.USAGE_CONTEXT)


def _tiny(key: str) -> int:
    value = TINY_LLAMA[key]
    assert isinstance(value, int)
    return value


def test_the_shape_is_read_from_vllms_resolved_config(tmp_path: Path) -> None:
    shape = compat.kv_shape(tiny_config(tmp_path))
    assert shape == KVShape(
        layers=_tiny("num_hidden_layers"),
        kv_heads=_tiny("num_key_value_heads"),
        head_size=_tiny("head_dim"),
        dtype_bytes=4,
        block_size=128,  # vLLM's CPU default
        max_model_len=_tiny("max_position_embeddings"),
        max_num_seqs=128,  # vLLM's CPU default for an API server
    )


def test_the_gateways_cpu_block_size_is_the_one_vllm_resolves_and_sizes_by(tmp_path: Path) -> None:
    """The sizer plans in the blocks the engine allocates: the gateway's 32-token CPU block
    (classify's prompts share blocks in the prefix cache), not vLLM's default of 128."""
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    kwargs = engine_kwargs(
        Settings(model="m"),
        model_path=str(tmp_path),
        on_cpu=True,
        accepted=compat.engine_arg_names(),
    )
    config = compat.AsyncEngineArgs(**kwargs).create_engine_config(compat.USAGE_CONTEXT)
    assert config.cache_config.block_size == compat.kv_shape(config).block_size == CPU_BLOCK_SIZE


class _RecordingAsyncLLM:
    built: ClassVar[list[tuple[Any, dict[str, str], bool]]] = []

    @classmethod
    def from_vllm_config(
        cls, config: Any, *, usage_context: Any, enable_log_requests: bool, disable_log_stats: bool
    ) -> Any:
        cls.built.append((config, dict(os.environ), disable_log_stats))
        return SimpleNamespace()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, str], bool]]:
    monkeypatch.setattr(compat, "AsyncLLM", _RecordingAsyncLLM)
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    monkeypatch.delenv("OMP_NUM_THREADS")
    _RecordingAsyncLLM.built.clear()
    return _RecordingAsyncLLM.built


def test_the_embedding_engine_gets_its_kv_bytes_and_its_model_in_the_engine_core(
    tmp_path: Path, recorded: list[tuple[Any, dict[str, str], bool]]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    settings = Settings(model="m", max_model_len=500, embedding_cpu_kvcache_space="auto")
    kwargs = pooling_engine_kwargs(
        settings, model_path=str(tmp_path), on_cpu=True, accepted=compat.engine_arg_names()
    )
    compat.start_engine(
        kwargs, kv_cache_bytes=kv_cache_sizer(settings, "embedding"), worker_in_process=True
    )
    [(config, environment, no_stats)] = recorded
    shape = compat.kv_shape(config)
    assert shape.block_size == CPU_BLOCK_SIZE
    assert config.cache_config.kv_cache_memory_bytes == shape.min_bytes  # 500 tokens: 16 blocks + 1
    assert config.parallel_config.distributed_executor_backend.__name__ == "UniProcExecutor"
    # The engine core is spawned with as many threads as vLLM gives its CPU worker, unbound
    # (bound, its I/O threads would share the model's cores), and the environment is as it
    # was afterwards.
    assert int(environment["OMP_NUM_THREADS"]) >= 1
    assert not {"GOMP_CPU_AFFINITY", "OMP_PLACES", "KMP_AFFINITY"} & set(environment)
    assert "OMP_NUM_THREADS" not in os.environ
    assert no_stats is True  # the generation engine keeps vLLM's metrics


def test_a_size_too_small_is_refused_before_the_engine_starts(
    tmp_path: Path, recorded: list[tuple[Any, dict[str, str], bool]]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    settings = Settings(model="m", cpu_kvcache_space=0.0001)
    kwargs = engine_kwargs(
        settings, model_path=str(tmp_path), on_cpu=True, accepted=compat.engine_arg_names()
    )
    with pytest.raises(KVCacheTooSmallError, match=r"cpu_kvcache_space=0\.0001 GiB holds"):
        compat.start_engine(kwargs, kv_cache_bytes=kv_cache_sizer(settings, "generation"))
    assert recorded == []  # no engine core was spawned


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param("max\n", None, id="cgroup-v2-unlimited"),
        pytest.param(f"{GIB}\n", GIB, id="cgroup-v2-limit"),
    ],
)
def test_the_machine_memory_is_a_containers_limit_when_lower(
    tmp_path: Path, limit: str, expected: int | None
) -> None:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert machine_memory_bytes(tmp_path) == physical  # no cgroup files at all
    cgroup = tmp_path / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "memory.max").write_text(limit)
    assert machine_memory_bytes(tmp_path) == (expected or physical)
