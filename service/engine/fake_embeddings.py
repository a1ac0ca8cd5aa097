"""A fake embedding engine for fast tests (see fake.py for the generation engine)."""

from __future__ import annotations

import math
import zlib

from service.engine.base import EngineProgress
from service.engine.fake import FakeTokenizer


class FakeEmbeddingEngine:
    """Bag-of-words vectors: each word hashes to a dimension, so texts sharing words are close.

    Deterministic across processes (crc32, not `hash`), normalized like the real pooler's."""

    def __init__(self, *, dimensions: int = 64, max_model_len: int = 256) -> None:
        self._tokenizer = FakeTokenizer()
        self._dimensions = dimensions
        self._max_model_len = max_model_len
        self.requests: list[tuple[list[list[int]], str]] = []
        self.fail_with: BaseException | None = None
        self.healthy = True
        self._done = 0

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def tokenizer(self) -> FakeTokenizer:
        return self._tokenizer

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def truncatable(self) -> bool:
        return False

    @property
    def max_num_seqs(self) -> int:
        return 8

    def progress(self) -> EngineProgress:
        return EngineProgress(False, (self._done,))

    def _vector(self, token_ids: list[int]) -> list[float]:
        vector = [0.0] * self._dimensions
        for token_id in token_ids:
            word = self._tokenizer.token_text(token_id).strip().lower()
            vector[zlib.crc32(word.encode()) % self._dimensions] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    async def embed(
        self, inputs: list[list[int]], request_id: str, *, dimensions: int | None = None
    ) -> list[list[float]]:
        self.requests.append((inputs, request_id))
        if self.fail_with is not None:
            raise self.fail_with
        self._done += 1
        return [self._vector(ids) for ids in inputs]

    async def check_health(self) -> None:
        from service.errors import EngineDeadError

        if not self.healthy:
            raise EngineDeadError("The embedding engine is not healthy.")

    def shutdown(self) -> None:
        from service.errors import EngineDeadError

        self.healthy = False
        self.fail_with = EngineDeadError("The embedding engine has stopped.")
