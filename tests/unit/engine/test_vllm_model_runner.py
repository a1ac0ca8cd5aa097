"""Which vLLM model runner the engine gets, by the `no_repeat_ngram` setting, on CPU and on a
simulated GPU: the engine arguments and environment, then vLLM's own decision on them.

vLLM 0.26+ on GPU runs Model Runner V2 unless something it does not support is configured; a
custom logits processor is such a thing in 0.26 (it falls back to V1), and in 0.32 V2 refuses a
processor written to the V1 interface, as ours is. The CPU build here has no Triton CPU backend,
so it runs V1 whatever the setting; on a GPU build Triton is active, which is what the
simulation patches in.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import vllm.config.vllm
import vllm.envs

from service.config import Settings
from service.engine.base import EngineRequest, SamplingOptions
from service.engine.vllm import compat
from service.engine.vllm.adapter import VLLMEngine
from service.engine.vllm.args import (
    MODEL_RUNNER_V2_ENV,
    engine_environment,
    engine_kwargs,
    no_repeat_ngram_enabled,
)
from service.engine.vllm.logits import LOGITS_PROCESSORS
from service.errors import UnsupportedParameterError
from tests.unit.engine.test_vllm_args import ACCEPTED_SETS

PLATFORMS = [pytest.param(True, id="cpu"), pytest.param(False, id="gpu")]
# (setting, on CPU, processor registered)
RESOLUTION = [
    pytest.param("auto", True, True, id="auto-cpu"),
    pytest.param("auto", False, False, id="auto-gpu"),
    pytest.param("on", True, True, id="on-cpu"),
    pytest.param("on", False, True, id="on-gpu"),
    pytest.param("off", True, False, id="off-cpu"),
    pytest.param("off", False, False, id="off-gpu"),
]
# A model folder with only its config: enough for vLLM to build its engine config.
TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "num_hidden_layers": 2,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": True,
    "dtype": "float32",
}


def settings(no_repeat_ngram: str, **more: Any) -> Settings:
    return Settings(model="org/model", no_repeat_ngram=no_repeat_ngram, **more)


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No runner choice in the environment now, and whatever the code under test sets in
    os.environ is undone afterwards (set first, so that monkeypatch restores the absence)."""
    for name in (MODEL_RUNNER_V2_ENV, "VLLM_CPU_KVCACHE_SPACE", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    disable_cache = getattr(vllm.envs, "disable_envs_cache", None)  # an engine may have cached
    if disable_cache is not None:
        disable_cache()
    yield


@pytest.mark.parametrize(("setting", "on_cpu", "registered"), RESOLUTION)
def test_the_setting_resolves_per_platform(setting: str, on_cpu: bool, registered: bool) -> None:
    assert no_repeat_ngram_enabled(settings(setting), on_cpu=on_cpu) is registered


@pytest.mark.parametrize("accepted", ACCEPTED_SETS)
@pytest.mark.parametrize(("setting", "on_cpu", "registered"), RESOLUTION)
def test_the_processor_is_an_engine_argument_only_when_on(
    accepted: frozenset[str], setting: str, on_cpu: bool, registered: bool
) -> None:
    kwargs = engine_kwargs(
        settings(setting),
        model_path="/models/m",
        on_cpu=on_cpu,
        accepted=accepted,
        logits_processors=LOGITS_PROCESSORS,
    )
    assert kwargs.get("logits_processors") == (LOGITS_PROCESSORS if registered else None)


@pytest.mark.parametrize(("setting", "on_cpu", "registered"), RESOLUTION)
def test_the_v1_runner_is_asked_for_only_with_the_processor(
    setting: str, on_cpu: bool, registered: bool
) -> None:
    env = engine_environment(settings(setting, cpu_kvcache_space=2), on_cpu=on_cpu)
    # The KV-cache size goes to vLLM's config in bytes, not through VLLM_CPU_KVCACHE_SPACE.
    assert env == ({MODEL_RUNNER_V2_ENV: "0"} if registered else {})


# (setting, on CPU, the runner vLLM picks)
RUNNERS = [
    pytest.param("auto", True, "V1", id="auto-cpu"),
    pytest.param("on", True, "V1", id="on-cpu"),
    pytest.param("off", True, "V1", id="off-cpu-has-no-triton"),
    pytest.param("auto", False, "V2", id="auto-gpu-keeps-vllms-default"),
    pytest.param("off", False, "V2", id="off-gpu"),
    pytest.param("on", False, "V1", id="on-gpu-asks-for-v1"),
]


@pytest.mark.usefixtures("engine_env")
@pytest.mark.parametrize(("setting", "on_cpu", "runner"), RUNNERS)
def test_vllm_picks_the_runner_the_setting_means(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, on_cpu: bool, runner: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    if not on_cpu:  # a GPU build: Triton has an active driver
        monkeypatch.setattr(vllm.config.vllm, "HAS_TRITON", True)
    chosen = settings(setting, max_model_len=256, enforce_eager=True)
    for name, value in engine_environment(chosen, on_cpu=on_cpu).items():
        monkeypatch.setenv(name, value)
    kwargs = engine_kwargs(
        chosen,
        model_path=str(tmp_path),
        on_cpu=on_cpu,
        accepted=compat.engine_arg_names(),
        logits_processors=LOGITS_PROCESSORS,
    )
    config = compat.AsyncEngineArgs(**kwargs).create_engine_config(compat.USAGE_CONTEXT)
    assert compat.model_runner(SimpleNamespace(vllm_config=config)) == runner


def test_model_runner_v2_refuses_our_v1_interface_processor() -> None:
    """Why `on` asks for V1 by name: under V2, vLLM 0.32 would fail the engine's start."""
    from vllm.v1.worker.gpu.sample.logits_processor import (
        build_custom_logits_processors_params_validator,
    )

    with pytest.raises(ValueError, match="not a subclass"):
        build_custom_logits_processors_params_validator(LOGITS_PROCESSORS)


def test_model_runner_is_unknown_without_a_config() -> None:
    assert compat.model_runner(SimpleNamespace()) == "unknown"


class _Tokenizer:
    eos_token_id = 2


class _RecordingAsyncLLM:
    """Stands in for vLLM's AsyncLLM class: records how the adapter builds the engine."""

    built: ClassVar[list[tuple[Any, Any, dict[str, str], bool]]] = []

    def __init__(self) -> None:
        self.errored = False
        self.model_config = SimpleNamespace(max_model_len=256)
        self.vllm_config = SimpleNamespace(use_v2_model_runner=True)

    def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()

    def generate(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise AssertionError("the request must not reach the engine")

    @classmethod
    def from_vllm_config(
        cls, config: Any, *, usage_context: Any, enable_log_requests: bool, disable_log_stats: bool
    ) -> _RecordingAsyncLLM:
        cls.built.append((config, usage_context, dict(os.environ), disable_log_stats))
        return cls()


@pytest.mark.usefixtures("engine_env")
@pytest.mark.parametrize("on_cpu", PLATFORMS)
async def test_the_adapter_starts_the_engine_as_the_setting_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_cpu: bool
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    monkeypatch.setattr(compat, "on_cpu", lambda: on_cpu)
    monkeypatch.setattr(compat, "AsyncLLM", _RecordingAsyncLLM)
    _RecordingAsyncLLM.built.clear()
    chosen = settings("auto", max_model_len=256, max_num_seqs=4, enforce_eager=True)
    engine = VLLMEngine.start(chosen, model_path=str(tmp_path))
    [(config, usage_context, environment, no_stats)] = _RecordingAsyncLLM.built
    # Batch defaults as `vllm serve` has them (the gateway is an OpenAI API server too).
    assert usage_context == compat.USAGE_CONTEXT == "OPENAI_API_SERVER"
    assert no_stats is False  # vLLM's metrics and stats log stay on
    assert engine.supports_no_repeat_ngram is on_cpu
    assert (config.model_config.logits_processors == LOGITS_PROCESSORS) is on_cpu
    assert (environment.get(MODEL_RUNNER_V2_ENV) == "0") is on_cpu
    # On CPU the KV cache is sized (auto: 4 sequences x 256 tokens of 2 layers x 2 heads x 16
    # x 2 x 4 bytes = 512 bytes a token, 32 blocks of the gateway's 32 tokens + vLLM's null
    # block); on a GPU vLLM sizes it by gpu_memory_utilization.
    assert config.cache_config.kv_cache_memory_bytes == (33 * 32 * 512 if on_cpu else None)
    if not on_cpu:
        options = SamplingOptions(max_tokens=4, no_repeat_ngram_size=2)
        with pytest.raises(UnsupportedParameterError) as raised:
            async for _ in engine.generate(
                EngineRequest(prompt_token_ids=[1, 2], options=options, request_id="r1"),
                stream=False,
            ):
                pass
        assert raised.value.param == "no_repeat_ngram_size"
