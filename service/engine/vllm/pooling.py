"""`VLLMEmbeddingEngine`: the `EmbeddingEngine` protocol on a second `AsyncLLM` in pooling mode."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from service.config import Settings
from service.engine.base import EngineProgress
from service.engine.vllm import compat
from service.engine.vllm.adapter import StoppedEngine, VLLMTokenizer
from service.engine.vllm.args import (
    embedding_worker_in_process,
    kv_cache_sizer,
    pooling_engine_kwargs,
)
from service.errors import (
    EngineDeadError,
    EngineFailureError,
    EngineUnavailableError,
    InvalidRequestError,
)

logger = logging.getLogger(__name__)


class VLLMEmbeddingEngine:
    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._tokenizer = VLLMTokenizer(engine.get_tokenizer())
        config = engine.model_config
        self._max_model_len = int(config.max_model_len)
        self._dimensions = int(config.get_hidden_size())
        self._truncatable = bool(getattr(config, "is_matryoshka", False))
        self._active = 0  # open embed() calls
        self._outputs = 0  # vectors received, ever

    @classmethod
    def start(cls, settings: Settings, *, model_path: str) -> VLLMEmbeddingEngine:
        """Build the engine (blocking, ~15 s on CPU): run it off the event loop, after the
        generation engine (its engine core inherits the environment as it stands)."""
        cpu = compat.on_cpu()
        kwargs = pooling_engine_kwargs(
            settings, model_path=model_path, on_cpu=cpu, accepted=compat.engine_arg_names()
        )
        in_process = embedding_worker_in_process(settings, on_cpu=cpu)
        logger.info(
            "starting vLLM %s embedding engine: %s%s",
            compat.VERSION,
            kwargs,
            ", the model in its engine-core process" if in_process else "",
        )
        engine = compat.start_engine(
            kwargs,
            kv_cache_bytes=kv_cache_sizer(settings, "embedding") if cpu else None,
            worker_in_process=in_process,
        )
        return cls(engine)

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def tokenizer(self) -> VLLMTokenizer:
        return self._tokenizer

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def truncatable(self) -> bool:
        return self._truncatable

    @property
    def max_num_seqs(self) -> int:
        return compat.max_num_seqs(self._engine)

    def progress(self) -> EngineProgress:
        return EngineProgress(self._active > 0, (self._outputs,))

    async def _one(self, token_ids: list[int], request_id: str, params: Any) -> list[float]:
        async for output in self._engine.encode(
            {"prompt_token_ids": token_ids}, params, request_id
        ):
            if output.finished:
                self._outputs += 1
                data = output.outputs.data
                return [float(x) for x in data.tolist()]
        raise EngineFailureError("The embedding engine returned no vector.")

    async def embed(
        self, inputs: list[list[int]], request_id: str, *, dimensions: int | None = None
    ) -> list[list[float]]:
        if self._engine.errored:
            raise EngineDeadError("The embedding engine is not running.")
        params = compat.embed_params(dimensions)
        self._active += 1
        try:
            # One engine request per input, all submitted at once: the engine batches them.
            return list(
                await asyncio.gather(
                    *(self._one(ids, f"{request_id}-{i}", params) for i, ids in enumerate(inputs))
                )
            )
        except compat.EngineDeadError as err:
            raise EngineDeadError("The embedding engine has stopped.") from err
        except compat.GracefulHTTPError as err:
            raise EngineUnavailableError(str(err)) from err
        except compat.CLIENT_ERRORS as err:
            raise InvalidRequestError(str(err)) from err
        except EngineFailureError:
            raise
        except Exception as err:
            logger.exception("embedding request %s failed", request_id)
            raise EngineFailureError("The embedding engine failed on the request.") from err
        finally:
            self._active -= 1

    async def check_health(self) -> None:
        try:
            await self._engine.check_health()
        except Exception as err:
            raise EngineDeadError("The embedding engine is not healthy.") from err

    def shutdown(self) -> None:
        self._engine.shutdown()
        self._engine = StoppedEngine()
