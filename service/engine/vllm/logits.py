"""Logits processors the gateway adds to vLLM (loaded by the engine core, in its own process).

vLLM's v1 engine takes logits-processor classes at start-up; a request turns one on through
`SamplingParams.extra_args`. `AdapterLogitsProcessor` runs a per-request callable on that
request's row of logits, so requests that do not ask pay only a dict lookup per step.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

NO_REPEAT_NGRAM = "no_repeat_ngram_size"


class NoRepeatNGram:
    """Bans every token that would complete an n-gram already present in the output.

    Incremental: each call indexes only the n-grams ending in tokens generated since the last
    call, so a step costs O(n) plus the ban, not O(output length).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: dict[tuple[int, ...], set[int]] = {}
        self._indexed = 0

    def __call__(self, output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        n = self.size
        for end in range(max(self._indexed, n - 1), len(output_ids)):
            prefix = tuple(output_ids[end - n + 1 : end])
            self._seen.setdefault(prefix, set()).add(output_ids[end])
        self._indexed = len(output_ids)
        if len(output_ids) >= n - 1:
            banned = self._seen.get(tuple(output_ids[len(output_ids) - n + 1 :]))
            if banned:
                logits[list(banned)] = float("-inf")
        return logits


class NoRepeatNGramLogitsProcessor(AdapterLogitsProcessor):  # type: ignore[misc]
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        size = (sampling_params.extra_args or {}).get(NO_REPEAT_NGRAM, 0)
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"{NO_REPEAT_NGRAM} must be a non-negative integer, got {size!r}")

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which token is the most likely

    def new_req_logits_processor(self, params: Any) -> NoRepeatNGram | None:
        size = (params.extra_args or {}).get(NO_REPEAT_NGRAM, 0)
        return NoRepeatNGram(size) if size else None


# The form vLLM's `logits_processors` engine argument takes: "module:Class".
LOGITS_PROCESSORS = [f"{__name__}:{NoRepeatNGramLogitsProcessor.__name__}"]
