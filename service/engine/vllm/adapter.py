"""`VLLMEngine`: the `Engine` protocol on vLLM's in-process `AsyncLLM`."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from service.config import Settings
from service.engine.base import (
    EngineProgress,
    EngineRequest,
    GenerationChunk,
    SamplingOptions,
    no_repeat_ngram_off,
)
from service.engine.vllm import compat, convert
from service.engine.vllm.args import (
    engine_environment,
    engine_kwargs,
    kv_cache_sizer,
    no_repeat_ngram_enabled,
)
from service.engine.vllm.logits import LOGITS_PROCESSORS
from service.engine.vllm.logprob_modes import LogprobModes
from service.engine.vllm.parsers import (
    VLLMReasoningParser,
    VLLMToolCallParser,
    load_reasoning_parser,
    load_tool_parser,
)
from service.errors import (
    EngineDeadError,
    EngineFailureError,
    EngineUnavailableError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedParameterError,
)
from service.telemetry import context

logger = logging.getLogger(__name__)


class VLLMTokenizer:
    """The engine's own tokenizer, narrowed to what the API layer needs."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self.eos_token_id: int | None = tokenizer.eos_token_id

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(token_ids)))

    def token_text(self, token_id: int) -> str:
        return str(self._tok.decode([token_id]))

    @property
    def chat_template(self) -> str | None:
        template = getattr(self._tok, "chat_template", None)
        return template if isinstance(template, str) else None

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
    ) -> str:
        extra: dict[str, Any] = {}
        if tools is not None:
            extra["tools"] = tools
        if chat_template is not None:
            extra["chat_template"] = chat_template
        return str(
            self._tok.apply_chat_template(
                messages,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                tokenize=False,
                **extra,
            )
        )


class StoppedEngine:
    """Stands in for AsyncLLM after shutdown: an engine that reports itself errored."""

    errored = True

    def shutdown(self) -> None:
        pass

    async def check_health(self) -> None:
        raise RuntimeError("the engine has been shut down")

    async def abort(self, request_id: str) -> None:
        pass


class VLLMEngine:
    def __init__(
        self,
        engine: Any,
        *,
        priority_scheduling: bool = False,
        no_repeat_ngram: bool = True,
        lora: bool = False,
        tool_call_parser: str | None = None,
        reasoning_parser: str | None = None,
    ) -> None:
        self._engine = engine
        self._lora = lora
        self._adapters: dict[str, Any] = {}  # name -> LoRARequest
        self._adapter_ids = itertools.count(1)  # vLLM's adapter ids: unique, never reused
        raw_tokenizer = engine.get_tokenizer()
        self._raw_tokenizer = raw_tokenizer
        self._tokenizer = VLLMTokenizer(raw_tokenizer)
        # Loaded (and checked against the tokenizer) once; instantiated per output.
        self._tool_parser_class = (
            load_tool_parser(tool_call_parser, raw_tokenizer) if tool_call_parser else None
        )
        self._reasoning_parser_class = (
            load_reasoning_parser(reasoning_parser, raw_tokenizer) if reasoning_parser else None
        )
        self._max_model_len = int(engine.model_config.max_model_len)
        self._priority_scheduling = priority_scheduling
        self._no_repeat_ngram = no_repeat_ngram
        self._active = 0  # open generate() calls
        self._outputs = 0  # outputs received, ever
        self._logprob_modes = LogprobModes()
        self._kv_block_size = compat.kv_block_size(engine)

    @classmethod
    def start(cls, settings: Settings, *, model_path: str) -> VLLMEngine:
        """Build the engine (blocking, ~30 s on CPU): run it off the event loop."""
        cpu = compat.on_cpu()
        environment = engine_environment(settings, on_cpu=cpu)
        os.environ.update(environment)
        kwargs = engine_kwargs(
            settings,
            model_path=model_path,
            on_cpu=cpu,
            accepted=compat.engine_arg_names(),
            logits_processors=LOGITS_PROCESSORS,
        )
        logger.info("starting vLLM %s engine: %s, env %s", compat.VERSION, kwargs, environment)
        if isinstance(kwargs.get("structured_outputs_config"), dict):
            kwargs["structured_outputs_config"] = compat.structured_outputs_config(
                kwargs["structured_outputs_config"]
            )
        engine = compat.start_engine(
            kwargs,
            usage_context=compat.USAGE_CONTEXT,
            kv_cache_bytes=kv_cache_sizer(settings, "generation") if cpu else None,
        )
        ngram = no_repeat_ngram_enabled(settings, on_cpu=cpu)
        logger.info(
            "vLLM model runner: %s (no_repeat_ngram %s: %s)",
            compat.model_runner(engine),
            settings.no_repeat_ngram,
            "on" if ngram else "off",
        )
        try:
            return cls(
                engine,
                priority_scheduling=settings.scheduling_policy == "priority",
                no_repeat_ngram=ngram,
                lora=settings.enable_lora,
                tool_call_parser=settings.tool_call_parser,
                reasoning_parser=settings.reasoning_parser,
            )
        except Exception:
            engine.shutdown()
            raise

    @property
    def supports_no_repeat_ngram(self) -> bool:
        return self._no_repeat_ngram

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def tokenizer(self) -> VLLMTokenizer:
        return self._tokenizer

    @property
    def max_num_seqs(self) -> int:
        return compat.max_num_seqs(self._engine)

    def tool_parser(self, tools: list[dict[str, Any]]) -> VLLMToolCallParser | None:
        if self._tool_parser_class is None:
            return None
        return VLLMToolCallParser(self._tool_parser_class, self._raw_tokenizer, tools)

    def reasoning_parser(self) -> VLLMReasoningParser | None:
        if self._reasoning_parser_class is None:
            return None
        return VLLMReasoningParser(self._reasoning_parser_class, self._raw_tokenizer)

    def progress(self) -> EngineProgress:
        return EngineProgress(
            self._active > 0, (self._outputs, compat.tokens_in_progress(self._engine))
        )

    async def generate(
        self, request: EngineRequest, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        chunks = self._generate(request, stream=stream)
        # Top-k logprobs: never in a step with token-id scoring (logprob_modes.py).
        options = request.options
        top_k = options.logprobs and not options.logprob_token_ids
        gate = self._logprob_modes.top_k() if top_k else nullcontext()
        async with gate, aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    @property
    def kv_block_size(self) -> int | None:
        return self._kv_block_size

    def token_scoring(self) -> AbstractAsyncContextManager[bool]:
        if not compat.LOGPROB_TOKEN_IDS:
            return _refused()
        return self._logprob_modes.scoring()

    async def _generate(
        self, request: EngineRequest, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        self._check_runnable(request.options)
        outputs = None
        finished = False
        self._active += 1
        try:
            params = convert.sampling_params(request.options, stream=stream)
            outputs = self._engine.generate(
                {"prompt_token_ids": request.prompt_token_ids},
                params,
                request.request_id,
                **self._placement(request),
            )
            # vLLM aborts the request itself when this generator is closed or cancelled.
            async for output in outputs:
                self._outputs += 1
                finished = output.finished
                yield convert.chunk(output, request.options)
        except GatewayError:
            raise
        except Exception as err:
            raise _gateway_error(err, request.request_id) from err
        finally:
            self._active -= 1
            if not stream and not finished and outputs is not None:
                # Aborted before its only output: count what it generated (metrics, limits).
                context.count_partial_output(
                    compat.generated_so_far(self._engine, request.request_id)
                )
            if outputs is not None:
                await _close(outputs, request.request_id)

    def _check_runnable(self, options: SamplingOptions) -> None:
        if self._engine.errored:
            raise EngineDeadError("The engine is not running.")
        if options.no_repeat_ngram_size and not self._no_repeat_ngram:
            # vLLM would ignore the request's extra_args without the processor: never silently.
            raise no_repeat_ngram_off()

    def _placement(self, request: EngineRequest) -> dict[str, Any]:
        """vLLM's keyword arguments for the request's priority and adapter."""
        extra: dict[str, Any] = {}
        if self._priority_scheduling:
            extra["priority"] = request.priority
        if request.adapter is not None:
            extra["lora_request"] = self._adapter_request(request.adapter)
        return extra

    def _adapter_request(self, name: str) -> Any:
        request = self._adapters.get(name)
        if request is None:  # unloaded between the model check and now
            raise ModelNotFoundError(f"The adapter '{name}' is not loaded.", param="model")
        return request

    def adapters(self) -> list[str]:
        return list(self._adapters)

    async def load_adapter(self, name: str, path: str) -> None:
        if not self._lora:
            raise UnsupportedParameterError(
                "LoRA is off: set lora_modules or enable_lora_runtime_updates.", param="lora_name"
            )
        if name in self._adapters:
            raise InvalidRequestError(f"An adapter named '{name}' is loaded.", param="lora_name")
        if not await asyncio.to_thread((Path(path) / "adapter_config.json").is_file):
            raise InvalidRequestError(
                f"No PEFT adapter (adapter_config.json) at '{path}'.", param="lora_path"
            )
        request = compat.LoRARequest(
            lora_name=name, lora_int_id=next(self._adapter_ids), lora_path=path
        )
        try:  # the engine core loads and checks it (rank, target modules) now, not later
            await self._engine.add_lora(request)
        except compat.EngineDeadError as err:
            raise EngineDeadError("The engine has stopped.") from err
        except Exception as err:
            logger.warning("loading adapter %s from %s failed", name, path, exc_info=True)
            raise InvalidRequestError(
                f"The adapter '{name}' could not be loaded: {err}", param="lora_path"
            ) from err
        self._adapters[name] = request

    async def unload_adapter(self, name: str) -> None:
        request = self._adapters.pop(name, None)
        if request is None:
            raise ModelNotFoundError(f"No adapter '{name}' is loaded.", param="lora_name")
        await self._engine.remove_lora(request.lora_int_id)

    async def abort(self, request_id: str) -> None:
        await self._engine.abort(request_id)

    async def check_health(self) -> None:
        try:
            await self._engine.check_health()
        except Exception as err:
            raise EngineDeadError("The engine is not healthy.") from err

    def shutdown(self) -> None:
        self._engine.shutdown()
        # Let AsyncLLM be collected now: its __del__ shuts down again, which fails if it only
        # runs at interpreter exit, after vLLM's module globals are gone.
        self._engine = StoppedEngine()


@asynccontextmanager
async def _refused() -> AsyncIterator[bool]:
    yield False


def _gateway_error(err: Exception, request_id: str) -> GatewayError:
    """An engine failure as the gateway's error."""
    if isinstance(err, compat.EngineDeadError):
        return EngineDeadError("The engine has stopped.")
    if isinstance(err, compat.GracefulHTTPError):
        return EngineUnavailableError(str(err))
    if isinstance(err, compat.CLIENT_ERRORS):
        return InvalidRequestError(str(err))
    if isinstance(err.__cause__, compat.CLIENT_ERRORS):
        return InvalidRequestError(str(err.__cause__))
    logger.error("engine request %s failed", request_id, exc_info=err)
    return EngineFailureError("The engine failed to process the request.")


async def _close(outputs: Any, request_id: str) -> None:
    """Close vLLM's output stream now (aborting the request if it still runs)."""
    try:
        await outputs.aclose()
    except Exception:  # aborting on a dead engine fails too; the cause is raised
        logger.warning("closing engine request %s failed", request_id, exc_info=True)
