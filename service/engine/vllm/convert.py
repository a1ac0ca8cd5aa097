"""Our engine-neutral types <-> vLLM's SamplingParams and RequestOutput."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from service.engine.base import (
    FinishReason,
    GenerationChunk,
    SamplingOptions,
    SequenceDelta,
    StructuredOutput,
    TokenLogprob,
)
from service.engine.vllm import compat
from service.engine.vllm.logits import NO_REPEAT_NGRAM
from service.telemetry.timings import EngineTimings

# JSON has no -inf; vLLM's own server writes the same floor.
_LOGPROB_FLOOR = -9999.0


def sampling_params(options: SamplingOptions, *, stream: bool) -> Any:
    kwargs: dict[str, Any] = {
        "n": options.n,
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "top_k": options.top_k if options.top_k > 0 else compat.TOP_K_DISABLED,
        "min_p": options.min_p,
        "presence_penalty": options.presence_penalty,
        "frequency_penalty": options.frequency_penalty,
        "repetition_penalty": options.repetition_penalty,
        "seed": options.seed,
        "stop": list(options.stop) or None,
        "stop_token_ids": list(options.stop_token_ids) or None,
        "include_stop_str_in_output": options.include_stop_str_in_output,
        "ignore_eos": options.ignore_eos,
        "min_tokens": options.min_tokens,
        "logprobs": options.logprobs,
        "prompt_logprobs": options.prompt_logprobs,
        "logit_bias": options.logit_bias,
        "skip_special_tokens": options.skip_special_tokens,
        "output_kind": compat.output_kind(stream=stream),
    }
    if options.logprob_token_ids:
        kwargs["logprob_token_ids"] = list(options.logprob_token_ids)
    if options.no_repeat_ngram_size:
        kwargs["extra_args"] = {NO_REPEAT_NGRAM: options.no_repeat_ngram_size}
    if options.structured is not None:
        kwargs.update(compat.structured_kwargs(_structured(options.structured)))
    return compat.SamplingParams(**kwargs)


def _structured(spec: StructuredOutput) -> dict[str, Any]:
    if spec.json_schema is not None:
        return {"json": spec.json_schema}
    if spec.json_object:
        return {"json_object": True}
    if spec.regex is not None:
        return {"regex": spec.regex}
    if spec.choice is not None:
        return {"choice": list(spec.choice)}
    return {"grammar": spec.grammar}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else _LOGPROB_FLOOR


def _position(token_id: int, entry: Mapping[int, Any], top_n: int) -> TokenLogprob:
    """One position of vLLM logprobs: the sampled token plus the `top_n` best by rank."""
    chosen = entry.get(token_id)
    ranked = sorted(
        (item for item in entry.items() if item[1].rank is not None and item[1].rank <= top_n),
        key=lambda item: item[1].rank,
    )
    return TokenLogprob(
        token_id,
        (chosen.decoded_token or "") if chosen is not None else "",
        _finite(chosen.logprob) if chosen is not None else _LOGPROB_FLOOR,
        tuple((tid, lp.decoded_token or "", _finite(lp.logprob)) for tid, lp in ranked[:top_n]),
    )


def token_logprobs(
    token_ids: Sequence[int], entries: Sequence[Mapping[int, Any] | None], top_n: int
) -> list[TokenLogprob | None]:
    return [
        _position(tid, entry, top_n) if entry is not None else None
        for tid, entry in zip(token_ids, entries, strict=False)
    ]


def chunk(output: Any, options: SamplingOptions) -> GenerationChunk:
    """A vLLM RequestOutput (delta or final) as a GenerationChunk."""
    sequences = []
    for completion in output.outputs:
        logprobs = None
        top_n = options.logprobs
        if options.logprob_token_ids:
            # vLLM ranks the asked-for ids 1..k whatever their logprobs; the sampled token keeps
            # its own rank and may come in among them: keep all k + 1.
            top_n = len(options.logprob_token_ids) + 1
        if top_n is not None and completion.logprobs is not None:
            logprobs = [
                lp
                for lp in token_logprobs(completion.token_ids, completion.logprobs, top_n)
                if lp is not None
            ]
        sequences.append(
            SequenceDelta(
                index=completion.index,
                text=completion.text,
                token_ids=completion.token_ids,
                logprobs=logprobs,
                finish_reason=_finish_reason(completion.finish_reason),
                stop_reason=completion.stop_reason,
            )
        )
    prompt_ids = output.prompt_token_ids or []
    prompt_logprobs = None
    if options.prompt_logprobs is not None and output.prompt_logprobs is not None:
        prompt_logprobs = token_logprobs(
            prompt_ids, output.prompt_logprobs, options.prompt_logprobs
        )
    timings = _timings(output) if output.finished else None
    return GenerationChunk(sequences, len(prompt_ids), output.finished, prompt_logprobs, timings)


def _timings(output: Any) -> EngineTimings | None:
    """The engine core's timestamps for a finished request (vLLM's `RequestStateStats`).

    Present when vLLM keeps stats (`disable_log_stats` off); a request that never reached the
    scheduler has zeros, which say nothing, so they give None.
    """
    stats = getattr(output, "metrics", None)
    queued = getattr(stats, "queued_ts", 0.0)
    scheduled = getattr(stats, "scheduled_ts", 0.0)
    if not (queued and scheduled):
        return None
    return EngineTimings(
        queued=float(queued),
        scheduled=float(scheduled),
        first_token=float(getattr(stats, "first_token_ts", 0.0) or scheduled),
        last_token=float(getattr(stats, "last_token_ts", 0.0) or scheduled),
    )


def _finish_reason(reason: str | None) -> FinishReason | None:
    if reason is None:
        return None
    if reason in ("stop", "length", "abort"):
        return reason  # type: ignore[return-value]
    return "stop"
