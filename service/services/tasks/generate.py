"""/v1/generate: Hugging Face `generate` semantics on the engine.

Knobs keep HF's names and meanings (lengths in tokens; `max_length`/`min_length` count the
prompt). Sampling knobs that would have no effect (e.g. `temperature` without `do_sample`) are
rejected rather than ignored, so a request never silently does something other than it says.
`language` keeps the text in that language's script by a structured-output constraint
(script_grammar.py): a raw prompt has no instruction to carry it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, EngineRequest, SamplingOptions, no_repeat_ngram_off
from service.errors import ContextLengthError, InvalidRequestError, UnsupportedParameterError
from service.schemas.common import Usage, stop_sequences
from service.schemas.tasks import (
    GenerateRequest,
    GenerateResponse,
    GenerateResult,
    Generation,
)
from service.services.core import costs
from service.services.core.generation import (
    Dispatch,
    engine_request_ids,
    gather_or_cancel,
    run_to_completion,
)
from service.services.tasks.beam_search import BeamConfig, Hypothesis, engine_step, search
from service.services.tasks.common import (
    envelope,
    finish_reason,
    inputs,
    new_id,
    served_model,
    stream_task,
)
from service.services.tasks.languages import requested_language
from service.services.tasks.script_grammar import script_constraint
from service.telemetry.context import engine_wait

SAMPLING_ONLY = ("temperature", "top_k", "top_p")
# What beam search cannot honour, each with the values that leave it a no-op (one shared
# tuple would let stream=true and size 1 through, as True == 1 == 1.0).
NOT_WITH_BEAMS: dict[str, tuple[object, ...]] = {
    "repetition_penalty": (1.0,),
    "stop": (None,),
    "stream": (False,),
}


@dataclass(frozen=True, slots=True)
class PreparedGenerate:
    id: str
    model: str
    requests: list[EngineRequest]
    beams: BeamConfig | None  # per-prompt lengths are in each request's options
    num_return_sequences: int
    priority: int

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        if self.beams is not None:
            return costs.of_beams(len(self.requests), self.beams.num_beams)
        return costs.of_requests(self.requests)


def _conflict(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_combination")


def _check_combinations(req: GenerateRequest) -> None:
    """Knobs that would have no effect together are a 400 naming one of them."""
    given = req.model_fields_set
    for a, b in (("max_new_tokens", "max_length"), ("min_new_tokens", "min_length")):
        if a in given and b in given:
            raise _conflict(f"Give {a} or {b}, not both.", b)
    if not req.do_sample:
        _check_greedy(req, given)
    elif req.temperature == 0.0:
        raise _conflict("temperature must be positive when do_sample is true.", "temperature")
    if req.num_beams > 1:
        _check_beams(req, given)
    else:
        for name in ("length_penalty", "early_stopping"):
            if name in given:
                raise _conflict(f"{name} only applies to beam search (num_beams > 1).", name)


def _check_greedy(req: GenerateRequest, given: set[str]) -> None:
    for name in SAMPLING_ONLY:
        if name in given:
            raise _conflict(f"{name} has no effect unless do_sample is true.", name)
    if req.num_beams == 1 and req.num_return_sequences > 1:
        raise _conflict(
            "Greedy search returns one sequence: set do_sample or num_beams for "
            "num_return_sequences > 1.",
            "num_return_sequences",
        )


def _check_beams(req: GenerateRequest, given: set[str]) -> None:
    if req.do_sample:
        raise _conflict(
            "Beam sampling is not supported: num_beams > 1 is beam search, which does not sample.",
            "do_sample",
        )
    for name, inert in NOT_WITH_BEAMS.items():
        if name in given and getattr(req, name) not in inert:
            raise _conflict(f"{name} is not supported with beam search (num_beams > 1).", name)
    if req.num_return_sequences > req.num_beams:
        raise _conflict("num_return_sequences must not exceed num_beams.", "num_return_sequences")


def _lengths(
    req: GenerateRequest,
    prompt_tokens: int,
    engine: Engine,
    settings: Settings,
) -> tuple[int, int]:
    """(max new tokens, min new tokens) for one prompt, checked against the context."""
    room = engine.max_model_len - prompt_tokens
    if req.max_new_tokens is not None:
        max_new, param = req.max_new_tokens, "max_new_tokens"
    elif req.max_length is not None:
        max_new, param = req.max_length - prompt_tokens, "max_length"
        if max_new < 1:
            raise InvalidRequestError(
                f"max_length ({req.max_length}) must exceed the prompt's {prompt_tokens} tokens.",
                param="max_length",
            )
    else:
        max_new, param = min(settings.default_max_tokens, room), "prompt"
    if max_new > room or room < 1:
        raise ContextLengthError(
            f"This model's maximum context length is {engine.max_model_len} tokens; the prompt "
            f"has {prompt_tokens} and {max_new} new tokens were asked for.",
            param=param,
        )
    if req.min_new_tokens is not None:
        min_new, min_param = req.min_new_tokens, "min_new_tokens"
    else:
        min_new, min_param = max((req.min_length or 0) - prompt_tokens, 0), "min_length"
    if min_new > max_new:
        raise _conflict(
            f"{min_param} asks for more tokens ({min_new}) than the maximum ({max_new}).", min_param
        )
    return max_new, min_new


def prepare(
    req: GenerateRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedGenerate:
    model = served_model(req.model, settings, engine)
    dispatch = Dispatch.of(caller, model.adapter)
    _check_combinations(req)
    # Beam search bans repeated n-grams in the gateway's own loop; sampling needs the engine's
    # logits processor.
    if req.no_repeat_ngram_size and req.num_beams == 1 and not engine.supports_no_repeat_ngram:
        raise no_repeat_ngram_off()
    if req.num_beams > 1 and req.language is not None:
        # Each beam step is a request of its own: a constraint would restart at every one.
        raise _conflict("language is not supported with beam search (num_beams > 1).", "language")
    if req.num_beams > 1 and model.adapter is not None:
        raise UnsupportedParameterError(
            "Beam search runs on the base model only; leave num_beams at 1 with an adapter.",
            param="num_beams",
        )
    stop = stop_sequences(req.stop)
    language = requested_language(req.language)
    # The text goes on from the prompt: its first sentence is already begun.
    structured = script_constraint(
        None if language is None else language.script, complete=False, continuation=True
    )
    requests = []
    param = "prompt" if req.prompt is not None else "prompts"
    for text in inputs(req.prompt, req.prompts, param=param, settings=settings):
        ids = engine.tokenizer.encode(text)
        max_new, min_new = _lengths(req, len(ids), engine, settings)
        options = SamplingOptions(
            max_tokens=max_new,
            min_tokens=min_new,
            n=req.num_return_sequences if req.num_beams == 1 else 1,
            temperature=req.temperature if req.do_sample else 0.0,
            top_k=req.top_k if req.do_sample else 0,
            top_p=req.top_p if req.do_sample else 1.0,
            repetition_penalty=req.repetition_penalty,
            no_repeat_ngram_size=req.no_repeat_ngram_size,
            stop=stop,
            seed=req.seed,
            structured=structured,
        )
        requests.append(dispatch.request(ids, options))
    beams = None
    if req.num_beams > 1:
        eos = engine.tokenizer.eos_token_id
        beams = BeamConfig(
            num_beams=req.num_beams,
            max_new_tokens=0,
            eos_token_ids=() if eos is None else (eos,),
            length_penalty=req.length_penalty,
            early_stopping=req.early_stopping,
            no_repeat_ngram_size=req.no_repeat_ngram_size,
        )
    return PreparedGenerate(
        new_id("generate"), model.name, requests, beams, req.num_return_sequences, dispatch.priority
    )


async def generate(prepared: PreparedGenerate, engine: Engine) -> GenerateResponse:
    if prepared.beams is not None:
        return await _beam_search(prepared, engine)
    results = await run_to_completion(engine, prepared.requests, prepared.id)
    out = [
        GenerateResult(
            index=i,
            prompt_tokens=r.num_prompt_tokens,
            generations=[
                Generation(
                    text=s.text,
                    finish_reason=finish_reason(s.finish_reason),
                    num_tokens=len(s.token_ids),
                )
                for s in r.sequences
            ],
        )
        for i, r in enumerate(results)
    ]
    return _response(prepared, out)


async def _beam_search(prepared: PreparedGenerate, engine: Engine) -> GenerateResponse:
    assert prepared.beams is not None
    request_ids = engine_request_ids(prepared.id, len(prepared.requests))
    searches = [
        search(
            request.prompt_token_ids,
            replace(
                prepared.beams,
                max_new_tokens=request.options.max_tokens,
                min_new_tokens=request.options.min_tokens,
            ),
            engine_step(engine, request_id, priority=prepared.priority),
        )
        for request, request_id in zip(prepared.requests, request_ids, strict=True)
    ]
    with engine_wait():  # engine time, not gateway overhead
        found = await gather_or_cancel(searches)
    out = [
        GenerateResult(
            index=i,
            prompt_tokens=len(prepared.requests[i].prompt_token_ids),
            generations=[
                _generation(h, engine) for h in hypotheses[: prepared.num_return_sequences]
            ],
        )
        for i, hypotheses in enumerate(found)
    ]
    return _response(prepared, out)


def _generation(hypothesis: Hypothesis, engine: Engine) -> Generation:
    """HF's counts (the EOS is one of `num_tokens`); the text leaves the EOS out."""
    ids = hypothesis.token_ids
    text_ids = ids[:-1] if hypothesis.ended_with_eos else ids
    return Generation(
        text=engine.tokenizer.decode(text_ids),
        finish_reason="stop" if hypothesis.ended_with_eos else "length",
        num_tokens=len(ids),
        score=hypothesis.score,
    )


def _response(prepared: PreparedGenerate, results: list[GenerateResult]) -> GenerateResponse:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(g.num_tokens for r in results for g in r.generations)
    return envelope(
        "generate",
        id=prepared.id,
        model=prepared.model,
        results=results,
        usage=Usage.of(prompt, completion),
    )


def stream(prepared: PreparedGenerate, engine: Engine) -> AsyncIterator[str]:
    """JSON payloads of the SSE events (TaskChunk), without the final [DONE]."""
    return stream_task("generate.chunk", prepared.id, prepared.model, prepared.requests, engine)
