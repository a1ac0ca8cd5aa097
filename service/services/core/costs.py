"""What a request costs in engine sequences, the unit of admission control (`runtime/admission.py`).

Known exactly after preparation for generation (prompts x n, beams); estimated for a summary,
whose chunk count is only known after tokenizing the text (about 3 characters a token, a
chunk about half the context: a safe over-estimate), and for classify, whose label scoring
runs one engine sequence per text and label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.engine.base import EngineRequest

CHARS_PER_TOKEN = 3


def of_requests(requests: Sequence[EngineRequest]) -> int:
    return sum(request.options.n for request in requests)


def of_beams(prompts: int, beam_width: int) -> int:
    return prompts * beam_width


def of_classify(texts: int, labels: int) -> int:
    return texts * labels


def of_summary(texts: Sequence[str], max_model_len: int) -> int:
    chunk_chars = max(1, max_model_len // 2) * CHARS_PER_TOKEN
    return sum(max(1, math.ceil(len(text) / chunk_chars)) for text in texts)
