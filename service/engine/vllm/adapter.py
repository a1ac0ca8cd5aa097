"""`VLLMEngine`: the `Engine` protocol on vLLM's in-process `AsyncLLM`."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from service.config import Settings
from service.engine.base import (
    EngineProgress,
    GenerationChunk,
    SamplingOptions,
)
from service.engine.vllm import compat, convert
from service.engine.vllm.args import cpu_environment, engine_kwargs
from service.engine.vllm.logits import LOGITS_PROCESSORS
from service.errors import (
    EngineDeadError,
    EngineFailureError,
    EngineUnavailableError,
    InvalidRequestError,
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

    def apply_chat_template(
        self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True
    ) -> str:
        return str(
            self._tok.apply_chat_template(
                messages, add_generation_prompt=add_generation_prompt, tokenize=False
            )
        )


class _Stopped:
    """Stands in for AsyncLLM after shutdown: an engine that reports itself errored."""

    errored = True

    def shutdown(self) -> None:
        pass

    async def check_health(self) -> None:
        raise RuntimeError("the engine has been shut down")

    async def abort(self, request_id: str) -> None:
        pass


class VLLMEngine:
    def __init__(self, engine: Any, *, priority_scheduling: bool = False) -> None:
        self._engine = engine
        self._tokenizer = VLLMTokenizer(engine.get_tokenizer())
        self._max_model_len = int(engine.model_config.max_model_len)
        self._priority_scheduling = priority_scheduling
        self._active = 0  # open generate() calls
        self._outputs = 0  # outputs received, ever

    @classmethod
    def start(cls, settings: Settings, *, model_path: str) -> VLLMEngine:
        """Build the engine (blocking, ~30 s on CPU): run it off the event loop."""
        cpu = compat.on_cpu()
        if cpu:
            os.environ.update(cpu_environment(settings))
        kwargs = engine_kwargs(
            settings,
            model_path=model_path,
            on_cpu=cpu,
            accepted=compat.engine_arg_names(),
            logits_processors=LOGITS_PROCESSORS,
        )
        logger.info("starting vLLM %s engine: %s", compat.VERSION, kwargs)
        engine = compat.AsyncLLM.from_engine_args(compat.AsyncEngineArgs(**kwargs))
        return cls(engine, priority_scheduling=settings.scheduling_policy == "priority")

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def tokenizer(self) -> VLLMTokenizer:
        return self._tokenizer

    @property
    def max_num_seqs(self) -> int:
        return compat.max_num_seqs(self._engine)

    def progress(self) -> EngineProgress:
        return EngineProgress(
            self._active > 0, (self._outputs, compat.tokens_in_progress(self._engine))
        )

    async def generate(
        self,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        request_id: str,
        *,
        stream: bool,
        priority: int = 0,
    ) -> AsyncIterator[GenerationChunk]:
        if self._engine.errored:
            raise EngineDeadError("The engine is not running.")
        outputs = None
        finished = False
        self._active += 1
        try:
            params = convert.sampling_params(options, stream=stream)
            extra: dict[str, Any] = {}
            if self._priority_scheduling:
                extra["priority"] = priority
            outputs = self._engine.generate(
                {"prompt_token_ids": prompt_token_ids}, params, request_id, **extra
            )
            # vLLM aborts the request itself when this generator is closed or cancelled.
            async for output in outputs:
                self._outputs += 1
                finished = output.finished
                yield convert.chunk(output, options)
        except compat.EngineDeadError as err:
            raise EngineDeadError("The engine has stopped.") from err
        except compat.GracefulHTTPError as err:
            raise EngineUnavailableError(str(err)) from err
        except compat.CLIENT_ERRORS as err:
            raise InvalidRequestError(str(err)) from err
        except Exception as err:
            if isinstance(err.__cause__, compat.CLIENT_ERRORS):
                raise InvalidRequestError(str(err.__cause__)) from err
            logger.exception("engine request %s failed", request_id)
            raise EngineFailureError("The engine failed to process the request.") from err
        finally:
            self._active -= 1
            if not stream and not finished and outputs is not None:
                # Aborted before its only output: count what it generated (metrics, limits).
                context.count_partial_output(compat.generated_so_far(self._engine, request_id))
            if outputs is not None:
                try:
                    await outputs.aclose()
                except Exception:  # aborting on a dead engine fails too; the cause is raised
                    logger.warning("closing engine request %s failed", request_id, exc_info=True)

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
        self._engine = _Stopped()
