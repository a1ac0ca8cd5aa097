"""VLLMEngine on a stub of vLLM's AsyncLLM: prompts, chunks, early close and the error mapping."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import vllm.exceptions
from vllm.exceptions import QueueOverflowError, VLLMValidationError
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from service.engine.base import Engine, EngineRequest, GenerationChunk, SamplingOptions
from service.engine.vllm import adapter, compat, convert
from service.engine.vllm.adapter import VLLMEngine, VLLMTokenizer
from service.errors import EngineDeadError as GatewayEngineDeadError
from service.errors import EngineFailureError, EngineUnavailableError, InvalidRequestError

OPTIONS = SamplingOptions(max_tokens=8)


class StubTokenizer:
    eos_token_id = 2

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def encode(self, text: str, **kwargs: Any) -> tuple[int, ...]:
        self.calls.append(("encode", text, kwargs))
        return (1, 5, 6)

    def decode(self, token_ids: list[int]) -> str:
        self.calls.append(("decode", token_ids, {}))
        return "<" + ",".join(map(str, token_ids)) + ">"

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        self.calls.append(("apply_chat_template", messages, kwargs))
        return "<chat>"


class StubAsyncLLM:
    """The part of AsyncLLM the adapter uses. `generate` behaves like vLLM's: an async generator
    that aborts the request when it is closed or cancelled."""

    def __init__(self, outputs: Sequence[Any] = (), *, error: BaseException | None = None) -> None:
        self.outputs = outputs
        self.error = error
        self.errored = False
        self.model_config = SimpleNamespace(max_model_len=2048)
        self.tokenizer = StubTokenizer()
        self.calls: list[tuple[Any, Any, str]] = []
        self.aborted: list[str] = []
        self.health_error: BaseException | None = None
        self.health_checks = 0
        self.shutdowns = 0
        self.hang = False  # after the outputs, wait for more that never come
        self.waiting = asyncio.Event()

    def get_tokenizer(self) -> StubTokenizer:
        return self.tokenizer

    def generate(self, prompt: Any, sampling_params: Any, request_id: str) -> AsyncIterator[Any]:
        self.calls.append((prompt, sampling_params, request_id))
        return self._outputs(request_id)

    async def _outputs(self, request_id: str) -> AsyncIterator[Any]:
        try:
            for output in self.outputs:
                yield output
            if self.error is not None:
                raise self.error
            if self.hang:
                self.waiting.set()
                await asyncio.Event().wait()
        except (asyncio.CancelledError, GeneratorExit):
            await self.abort(request_id)
            raise

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def check_health(self) -> None:
        self.health_checks += 1
        if self.health_error is not None:
            raise self.health_error

    def shutdown(self) -> None:
        self.shutdowns += 1


def output(text: str, token_ids: list[int], *, finish_reason: str | None = None) -> RequestOutput:
    completion = CompletionOutput(0, text, token_ids, None, None, finish_reason=finish_reason)
    return RequestOutput("req-1", None, [1, 2, 3], None, [completion], finish_reason is not None)


OUTPUTS = [output("Hel", [10, 11]), output("lo", [12], finish_reason="length")]
REQUEST = EngineRequest(prompt_token_ids=[1, 2, 3], options=OPTIONS, request_id="req-1")


async def collect(engine: VLLMEngine, *, stream: bool = True) -> list[GenerationChunk]:
    return [c async for c in engine.generate(REQUEST, stream=stream)]


def test_the_adapter_satisfies_the_engine_protocol() -> None:
    engine = VLLMEngine(StubAsyncLLM())
    assert isinstance(engine, Engine)
    assert engine.max_model_len == 2048
    assert engine.tokenizer.eos_token_id == 2


@pytest.mark.parametrize(
    ("stream", "kind"),
    [
        pytest.param(True, RequestOutputKind.DELTA, id="stream"),
        pytest.param(False, RequestOutputKind.FINAL_ONLY, id="final"),
    ],
)
async def test_generate_sends_a_token_prompt_and_converts_each_output(
    stream: bool, kind: RequestOutputKind
) -> None:
    stub = StubAsyncLLM(OUTPUTS)
    chunks = await collect(VLLMEngine(stub), stream=stream)
    ((prompt, sampling, request_id),) = stub.calls
    assert prompt == {"prompt_token_ids": [1, 2, 3]}
    assert isinstance(sampling, SamplingParams)
    assert (sampling.max_tokens, sampling.output_kind) == (8, kind)
    assert request_id == "req-1"
    assert chunks == [convert.chunk(o, OPTIONS) for o in OUTPUTS]
    assert [c.sequences[0].text for c in chunks] == ["Hel", "lo"]
    assert chunks[-1].finished is True
    assert stub.aborted == []


async def test_closing_the_stream_early_aborts_the_request() -> None:
    stub = StubAsyncLLM(OUTPUTS)
    stream = VLLMEngine(stub).generate(REQUEST, stream=True)
    first = await anext(stream)
    assert first.sequences[0].text == "Hel"
    await stream.aclose()  # type: ignore[attr-defined]
    # At once, not when the garbage collector gets to vLLM's generator.
    assert stub.aborted == ["req-1"]


async def test_cancelling_a_waiting_request_aborts_it() -> None:
    stub = StubAsyncLLM(OUTPUTS[:1])
    stub.hang = True
    task = asyncio.create_task(collect(VLLMEngine(stub)))
    await stub.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stub.aborted == ["req-1"]


async def test_an_errored_engine_is_unavailable_before_generate() -> None:
    stub = StubAsyncLLM(OUTPUTS)
    stub.errored = True
    with pytest.raises(EngineUnavailableError):
        await collect(VLLMEngine(stub))
    assert stub.calls == []


async def test_bad_sampling_values_are_a_client_error_and_reach_no_engine() -> None:
    stub = StubAsyncLLM(OUTPUTS)
    hot = replace(REQUEST, options=SamplingOptions(max_tokens=8, temperature=3.0))
    stream = VLLMEngine(stub).generate(hot, stream=False)
    with pytest.raises(InvalidRequestError, match="temperature") as info:
        await anext(stream)
    assert isinstance(info.value.__cause__, VLLMValidationError)
    assert stub.calls == []


def generate_error(cause: BaseException) -> EngineGenerateError:
    error = EngineGenerateError()
    error.__cause__ = cause
    return error


ERROR_CASES = [
    pytest.param(EngineDeadError(), GatewayEngineDeadError, None, id="engine-dead"),
    pytest.param(QueueOverflowError(), EngineUnavailableError, None, id="queue-full-0.32"),
    pytest.param(
        VLLMValidationError("bad prompt", parameter="prompt", value=1),
        InvalidRequestError,
        "bad prompt",
        id="client-error-0.32",
    ),
    pytest.param(ValueError("prompt too long"), InvalidRequestError, "too long", id="value-0.26"),
    pytest.param(
        generate_error(ValueError("mask replay")),
        InvalidRequestError,
        "mask replay",
        id="wrapped-value-error-0.32",
    ),
    pytest.param(EngineGenerateError(), EngineFailureError, None, id="generate-error"),
    pytest.param(
        generate_error(RuntimeError("secret 0xdead")), EngineFailureError, None, id="wrapped"
    ),
    pytest.param(RuntimeError("secret 0xdead"), EngineFailureError, None, id="unexpected"),
]


@pytest.mark.parametrize("outputs", [pytest.param(0, id="at-once"), pytest.param(1, id="later")])
@pytest.mark.parametrize(("error", "mapped", "message"), ERROR_CASES)
async def test_engine_errors_are_mapped(
    outputs: int, error: Exception, mapped: type[Exception], message: str | None
) -> None:
    stub = StubAsyncLLM(OUTPUTS[:outputs], error=error)
    chunks: list[GenerationChunk] = []
    with pytest.raises(mapped) as info:
        async for chunk in VLLMEngine(stub).generate(REQUEST, stream=True):
            chunks.append(chunk)
    assert len(chunks) == outputs
    assert type(info.value) is mapped
    assert info.value.__cause__ is error
    if message is not None:
        assert message in str(info.value)
    assert "secret" not in str(info.value)


@pytest.fixture
def compat_026(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`compat` as it loads on vllm 0.26, whose vllm.exceptions has neither VLLMClientError nor
    GracefulHTTPError; the adapter is pointed at it for the test."""
    monkeypatch.delattr(vllm.exceptions, "VLLMClientError")
    monkeypatch.delattr(vllm.exceptions, "GracefulHTTPError")
    spec = importlib.util.spec_from_file_location("compat_as_on_vllm_026", compat.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(adapter, "compat", module)
    return module


class VLLMValidationError026(ValueError):
    """0.26's VLLMValidationError subclasses ValueError (research notes, section 7)."""


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        pytest.param(VLLMValidationError026("bad"), InvalidRequestError, id="validation"),
        pytest.param(ValueError("bad"), InvalidRequestError, id="value-error"),
        pytest.param(EngineDeadError(), GatewayEngineDeadError, id="engine-dead"),
        pytest.param(EngineGenerateError(), EngineFailureError, id="generate-error"),
        pytest.param(RuntimeError("secret"), EngineFailureError, id="unexpected"),
    ],
)
async def test_engine_errors_are_mapped_on_vllm_026(
    compat_026: ModuleType, error: Exception, mapped: type[Exception]
) -> None:
    assert ValueError in compat_026.CLIENT_ERRORS
    assert compat_026.GracefulHTTPError is not compat.GracefulHTTPError
    with pytest.raises(mapped) as info:
        await collect(VLLMEngine(StubAsyncLLM(OUTPUTS[:1], error=error)))
    assert type(info.value) is mapped
    assert "secret" not in str(info.value)


async def test_check_health_passes_when_the_engine_is_healthy() -> None:
    stub = StubAsyncLLM()
    await VLLMEngine(stub).check_health()
    assert stub.health_checks == 1


@pytest.mark.parametrize(
    "error",
    [pytest.param(EngineDeadError(), id="dead"), pytest.param(RuntimeError("x"), id="other")],
)
async def test_failed_health_check_means_unavailable(error: Exception) -> None:
    stub = StubAsyncLLM()
    stub.health_error = error
    with pytest.raises(EngineUnavailableError) as info:
        await VLLMEngine(stub).check_health()
    assert info.value.__cause__ is error


async def test_abort_and_shutdown_reach_the_engine() -> None:
    stub = StubAsyncLLM()
    engine = VLLMEngine(stub)
    await engine.abort("req-9")
    engine.shutdown()
    assert (stub.aborted, stub.shutdowns) == (["req-9"], 1)


@pytest.mark.parametrize(
    "add_generation_prompt", [pytest.param(True, id="add"), pytest.param(False, id="no-add")]
)
def test_chat_template_renders_text_not_tokens(add_generation_prompt: bool) -> None:
    stub = StubTokenizer()
    messages = [{"role": "user", "content": "Hi"}]
    text = VLLMTokenizer(stub).apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt
    )
    assert text == "<chat>"
    assert stub.calls == [
        (
            "apply_chat_template",
            messages,
            {
                "add_generation_prompt": add_generation_prompt,
                "continue_final_message": False,
                "tokenize": False,
            },
        )
    ]


def test_tokenizer_encodes_and_decodes_through_the_engines_tokenizer() -> None:
    stub = StubTokenizer()
    tokenizer = VLLMTokenizer(stub)
    assert tokenizer.encode("Hi", add_special_tokens=False) == [1, 5, 6]
    assert tokenizer.decode((5, 6)) == "<5,6>"
    assert tokenizer.token_text(5) == "<5>"
    assert stub.calls == [
        ("encode", "Hi", {"add_special_tokens": False}),
        ("decode", [5, 6], {}),
        ("decode", [5], {}),
    ]
