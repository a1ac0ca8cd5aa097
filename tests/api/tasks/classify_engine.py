"""A fake engine for /v1/classify whose label log-probabilities depend on the text.

`scoring_engine()` gives every prompt position log-probability -3, except in the last assistant turn
(where the label is): a label word gains `RULES[keyword][word]` when the keyword is among the
words of the last user turn (the text), and `bias[word]` whatever the text. So "I love it"
favours `positive`, and a bias shows up in the content-free prompts, which calibration removes.
It answers prompt logprobs (prefill scoring) or, with `token_ids=True`, the logprobs of asked
token ids (token scoring), with the same numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from service.engine.base import GenerationChunk, SamplingOptions, TokenLogprob
from service.engine.fake import FakeCall, FakeEngine, FakeTokenizer

CLASSIFY = "/v1/classify"
BASE = -3.0
RULES: dict[str, dict[str, float]] = {
    "love": {"positive": 2.5},
    "hate": {"negative": 2.5},
    "good": {"good": 2.5},
    "bad": {"bad": 2.5},
    "invoice": {"billing": 2.5},
    "parcel": {"shipping": 2.5},
    "goal": {"sports": 2.5},
    "service": {"service": 2.5},
}


class LabelScores:
    """The handler: prompt logprobs (prefill scoring) by default, and the logprobs of asked
    token ids (token scoring) when a request asks for them, with the same numbers."""

    def __init__(self, tokenizer: FakeTokenizer, bias: Mapping[str, float]) -> None:
        self.tokenizer = tokenizer
        self.bias = dict(bias)

    async def __call__(self, call: FakeCall) -> AsyncIterator[GenerationChunk]:
        ids, options = call.request.prompt_token_ids, call.request.options
        async for chunk in call.reply():
            if chunk.prompt_logprobs is not None:
                chunk.prompt_logprobs = self._scores(ids)
            if options.logprob_token_ids:
                self._asked(chunk, ids, options)
            yield chunk

    def _scores(self, ids: list[int]) -> list[TokenLogprob | None]:
        words = [self.tokenizer.token_text(t) for t in ids]
        reply, text = self._reply_and_text(words)
        scores: list[TokenLogprob | None] = [None]
        for i in range(1, len(ids)):
            logprob = self._label_word(words[i], text) if i >= reply else BASE
            scores.append(TokenLogprob(ids[i], words[i], logprob))
        return scores

    def _asked(self, chunk: GenerationChunk, ids: list[int], options: SamplingOptions) -> None:
        """Every position gets the asked ids' logprobs; the forced token is the one sampled."""
        _, text = self._reply_and_text([self.tokenizer.token_text(t) for t in ids])
        asked = tuple(
            (t, "", self._label_word(self.tokenizer.token_text(t), text))
            for t in options.logprob_token_ids
        )
        token = next(iter(options.logit_bias or {}), options.logprob_token_ids[0])
        positions = [TokenLogprob(token, "", 0.0, asked)] * options.max_tokens
        for seq in chunk.sequences:
            seq.token_ids, seq.logprobs = [token] * options.max_tokens, positions

    @staticmethod
    def _reply_and_text(words: list[str]) -> tuple[int, set[str]]:
        reply = max(i for i, w in enumerate(words) if w.strip() == "assistant:") + 1
        start = max(i for i, w in enumerate(words[:reply]) if w.strip() == "user:") + 1
        return reply, {w.strip().strip(".,!?").lower() for w in words[start : reply - 1]}

    def _label_word(self, word: str, text: set[str]) -> float:
        word = word.strip()
        return (
            BASE
            + self.bias.get(word, 0.0)
            + sum(RULES[k].get(word, 0.0) for k in text if k in RULES)
        )


def scoring_engine(
    *, bias: Mapping[str, float] | None = None, token_ids: bool = False
) -> FakeEngine:
    """A fake engine scoring labels by `RULES` and `bias`; `token_ids`: whether it gives token
    scoring (else classify scores by prefill)."""
    engine = FakeEngine(max_model_len=512)
    engine.handler = LabelScores(engine.tokenizer, bias or {})
    engine.scores_token_ids = token_ids
    return engine


async def classify(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(CLASSIFY, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
