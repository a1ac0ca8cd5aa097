"""Beam search with Hugging Face `generate`'s semantics, run step by step on the engine.

vLLM's own beam search normalises by prompt + generated length and always runs to
`max_tokens`, so it matches none of HF's `early_stopping` modes. This module is HF's loop
(`GenerationMixin._beam_search` in transformers 4.50+/5.x) over per-beam top-k log-probabilities:

* each round asks the engine for one token per running beam with the `2 x num_beams` best
  log-probabilities (more when tokens are banned), read as HF's log-softmax of the raw logits;
  the prefix cache makes the prompt (whole KV blocks of it) free after the first round;
* the `2 x num_beams` best continuations over all beams are kept; those that end (EOS, or the
  length limit) and rank in the first `num_beams` become finished hypotheses, scored
  `sum of log-probabilities / generated_length ** length_penalty` (EOS counted);
* the best `num_beams` unfinished continuations run on;
* it stops when every running continuation ended, when `early_stopping` is true and
  `num_beams` hypotheses are finished, or when HF's heuristic says no running beam can beat
  the worst finished hypothesis (`early_stopping` false: at the current length;
  `"never"` with a positive `length_penalty`: at the maximum length).

`min_new_tokens` and `no_repeat_ngram_size` ban tokens as HF's logits processors do (the
n-grams include the prompt's, as HF's do for decoder-only models).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.engine.base import STEP_LOGPROBS_LIMIT, Engine, EngineRequest, SamplingOptions
from service.errors import EngineFailureError
from service.services.core.generation import gather_or_cancel

EarlyStopping = bool | Literal["never"]


@dataclass(frozen=True, kw_only=True)
class BeamConfig:
    num_beams: int
    max_new_tokens: int
    eos_token_ids: tuple[int, ...]
    length_penalty: float = 1.0
    early_stopping: EarlyStopping = False
    min_new_tokens: int = 0
    no_repeat_ngram_size: int = 0

    @property
    def candidates(self) -> int:
        """How many continuations HF keeps per round: enough to leave `num_beams` running
        even when the best `num_beams` all end in an EOS token."""
        return max(2, 1 + len(self.eos_token_ids)) * self.num_beams


@dataclass(frozen=True, slots=True)
class Hypothesis:
    token_ids: tuple[int, ...]  # generated tokens, the ending EOS included
    score: float  # HF's `sequences_scores`: length-normalised
    ended_with_eos: bool


@dataclass(frozen=True, slots=True)
class _Running:
    token_ids: tuple[int, ...]
    logprob: float  # the sum over generated tokens


@dataclass(slots=True)
class BeamState:
    """One prompt's search; `advance` is one round of HF's loop."""

    config: BeamConfig
    prompt_ids: tuple[int, ...]
    running: list[_Running] = field(default_factory=lambda: [_Running((), 0.0)])
    finished: list[Hypothesis] = field(default_factory=list)  # best first, at most num_beams
    length: int = 0  # tokens generated so far
    improvable: bool = True  # HF's `is_early_stop_heuristic_unsatisfied`
    done: bool = False

    def banned(self, beam: _Running) -> set[int]:
        """Tokens HF's logits processors set to -inf for this beam's next position."""
        config = self.config
        out: set[int] = set()
        if self.length < config.min_new_tokens:
            out.update(config.eos_token_ids)
        n = config.no_repeat_ngram_size
        if n:
            ids = self.prompt_ids + beam.token_ids
            if len(ids) >= n:
                prefix = ids[len(ids) - n + 1 :]
                for start in range(len(ids) - n + 1):
                    if ids[start : start + n - 1] == prefix:
                        out.add(ids[start + n - 1])
        return out

    def _all_finished(self) -> bool:
        return len(self.finished) == self.config.num_beams

    def advance(self, candidates: Sequence[list[tuple[int, float]]]) -> None:
        """One round: `candidates[b]` holds (token id, log-probability) of running beam `b`,
        banned tokens already removed, at least `config.candidates` of them where possible."""
        config = self.config
        scored = [
            (beam.logprob + logprob, b, token)
            for b, beam in enumerate(self.running)
            for token, logprob in candidates[b]
        ]
        # torch.topk over the flattened (beam, token) scores; ties go to the lower index.
        scored.sort(key=lambda c: (-c[0], c[1], c[2]))
        top = scored[: config.candidates]
        new_length = self.length + 1
        at_limit = new_length >= config.max_new_tokens
        ended = [at_limit or token in config.eos_token_ids for _, _, token in top]

        # Finished hypotheses: only the first num_beams of the candidates may enter, and none
        # once the search is full (early_stopping true) or can no longer improve.
        full = self._all_finished() and config.early_stopping is True
        if self.improvable and not full:
            norm = float(new_length) ** config.length_penalty
            for (logprob, b, token), end in zip(top[: config.num_beams], ended, strict=False):
                if end:
                    ids = (*self.running[b].token_ids, token)
                    self.finished.append(
                        Hypothesis(ids, logprob / norm, token in config.eos_token_ids)
                    )
            self.finished.sort(key=lambda h: -h.score)
            del self.finished[config.num_beams :]

        self.running = [
            _Running((*self.running[b].token_ids, token), logprob)
            for (logprob, b, token), end in zip(top, ended, strict=True)
            if not end
        ][: config.num_beams]
        self.length = new_length
        if self.running and self._all_finished():
            hypothetical = new_length
            if config.early_stopping == "never" and config.length_penalty > 0.0:
                hypothetical = config.max_new_tokens
            best_possible = self.running[0].logprob / float(hypothetical) ** config.length_penalty
            if not best_possible > min(h.score for h in self.finished):
                self.improvable = False
        self.done = (
            not self.improvable
            or (self._all_finished() and config.early_stopping is True)
            or all(ended)
            or not self.running
        )


StepFn = Callable[[list[int], int], Awaitable[list[tuple[int, float]]]]


async def search(prompt_ids: list[int], config: BeamConfig, step: StepFn) -> list[Hypothesis]:
    """HF's beam search; `step(token ids, k)` gives the k best (token, log-probability) next."""
    state = BeamState(config, tuple(prompt_ids))
    while not state.done:
        requests = []
        for beam in state.running:
            banned = state.banned(beam)
            want = min(config.candidates + len(banned), STEP_LOGPROBS_LIMIT)
            requests.append(_allowed(step([*prompt_ids, *beam.token_ids], want), banned))
        state.advance(await gather_or_cancel(requests))
    return state.finished


async def _allowed(
    found: Awaitable[list[tuple[int, float]]], banned: set[int]
) -> list[tuple[int, float]]:
    return [(token, logprob) for token, logprob in await found if token not in banned]


def engine_step(engine: Engine, request_id: str, *, priority: int) -> StepFn:
    """A `StepFn` on the engine: one greedy token with the k best raw log-probabilities.
    Beam search runs on the base model (no adapter), at the caller's priority."""
    counter = 0

    async def step(token_ids: list[int], k: int) -> list[tuple[int, float]]:
        nonlocal counter
        counter += 1
        options = SamplingOptions(max_tokens=1, temperature=0.0, logprobs=k, ignore_eos=True)
        request = EngineRequest(
            prompt_token_ids=token_ids,
            options=options,
            request_id=f"{request_id}-{counter}",
            priority=priority,
        )
        top: dict[int, float] = {}
        async for chunk in engine.generate(request, stream=False):
            for delta in chunk.sequences:
                for position in delta.logprobs or ():
                    for token, _, logprob in position.top:
                        top.setdefault(token, logprob)
        if not top:
            raise EngineFailureError("The engine returned no log-probabilities for beam search.")
        return sorted(top.items(), key=lambda item: -item[1])

    return step
