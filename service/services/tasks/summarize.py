"""/v1/summarize: one pass when the text fits the context, map-reduce when it does not.

Map-reduce: split on paragraph/sentence boundaries by token count, summarize the chunks
concurrently (continuous batching runs them together), join the partial summaries and repeat
until the result fits one final, styled summary. Length bounds are engine-enforced: the maximum
with max_tokens, the minimum with min_tokens.

Every step, map and reduce, asks for the text's language; a summary in another script is asked
again insisting on it, and then decoded under a constraint that allows only the target script
(script_grammar.py). Only a summary still off-script after that is flagged `language_mismatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, SamplingOptions, StructuredOutput
from service.errors import InvalidRequestError
from service.schemas.common import Usage
from service.schemas.tasks import SummarizeRequest, SummarizeResponse, SummarizeResult
from service.services.core import costs
from service.services.core.generation import (
    Dispatch,
    PromptResult,
    SequenceResult,
    gather_or_cancel,
    run_to_completion,
)
from service.services.tasks.chunking import split_by_tokens
from service.services.tasks.common import (
    envelope,
    finish_reason,
    inputs,
    new_id,
    served_model,
)
from service.services.tasks.languages import script
from service.services.tasks.prompts import summarize_messages
from service.services.tasks.script_grammar import script_constraint
from service.services.tasks.summary_text import language_for, trim_to_sentence
from service.telemetry.metrics import record_summary

DEFAULT_MAX_TOKENS = {"paragraph": 160, "bullets": 200, "headline": 24}
PARTIAL_SUMMARY_TOKENS = 160  # each map-step summary; far below a chunk, so levels shrink
MAX_DEPTH = 8
_MARGIN = 16  # tokens kept free for template and tokenization drift


@dataclass(slots=True)
class _Count:
    prompt: int = 0
    completion: int = 0

    def add(self, result: PromptResult) -> None:
        self.prompt += result.num_prompt_tokens
        self.completion += len(result.sequences[0].token_ids)


@dataclass(frozen=True, slots=True)
class _Target:
    """The language a text's summaries are asked in, and the script they are checked against."""

    language: str | None
    script: str | None


class _Summarizer:
    def __init__(
        self, req: SummarizeRequest, engine: Engine, request_id: str, dispatch: Dispatch
    ) -> None:
        self.req = req
        self.engine = engine
        self.request_id = request_id
        self.dispatch = dispatch
        self.max_tokens = req.max_length or DEFAULT_MAX_TOKENS[req.style]
        self.min_tokens = req.min_length or 0

    def _prompt(
        self, text: str, *, final: bool, language: str | None = None, insist: bool = False
    ) -> list[int]:
        r = self.req
        messages = summarize_messages(
            text, style=r.style, language=language, focus=r.focus, final=final, insist=insist
        )
        tok = self.engine.tokenizer
        return tok.encode(tok.apply_chat_template(messages), add_special_tokens=False)

    def _count(self, text: str) -> int:
        return len(self.engine.tokenizer.encode(text, add_special_tokens=False))

    async def run(self, index: int, text: str) -> tuple[SummarizeResult, _Count]:
        count = _Count()
        context = self.engine.max_model_len
        chunks, depth = 1, 0
        target = _Target(*language_for(text, self.req.language))
        ids = self._prompt(text, final=True, language=target.language)
        while len(ids) + self.max_tokens > context:
            if depth == MAX_DEPTH:
                raise InvalidRequestError("The text is too long to summarize.", param="text")
            overhead = len(self._prompt("", final=False, language=target.language))
            # A partial summary must stay well under its chunk, or the levels do not shrink.
            partial = min(PARTIAL_SUMMARY_TOKENS, (context - overhead - _MARGIN) // 4)
            if partial < 1:
                raise InvalidRequestError(
                    "The model's context is too small to summarize a text this long.",
                    param="text",
                )
            limit = context - overhead - partial - _MARGIN
            parts = split_by_tokens(text, limit, self._count)
            if depth == 0:
                chunks = len(parts)
            options = SamplingOptions(max_tokens=partial, temperature=0.0, repetition_penalty=1.1)
            partials = await self._in_script(
                parts,
                target,
                final=False,
                options=options,
                count=count,
                engine_id=f"{self.request_id}-{index}-map{depth}",
            )
            text = "\n\n".join(seq.text.strip() for seq, _ in partials)
            ids = self._prompt(text, final=True, language=target.language)
            depth += 1
        options = SamplingOptions(
            max_tokens=self.max_tokens,
            min_tokens=self.min_tokens,
            temperature=0.0,
            repetition_penalty=1.1,
        )
        ((seq, mismatch),) = await self._in_script(
            [text],
            target,
            final=True,
            options=options,
            count=count,
            engine_id=f"{self.request_id}-{index}",
        )
        summary_text = seq.text.strip()
        truncated = seq.finish_reason == "length"
        if truncated:
            trimmed = trim_to_sentence(summary_text, self.req.style)
            if self._count(trimmed) >= self.min_tokens:
                summary_text = trimmed
        summary = SummarizeResult(
            index=index,
            summary=summary_text,
            finish_reason=finish_reason(seq.finish_reason),
            summary_tokens=self._count(summary_text),
            chunks=chunks,
            depth=depth,
            truncated=truncated,
            language_mismatch=mismatch,
        )
        record_summary(chunks=chunks, depth=depth)
        return summary, count

    async def _in_script(
        self,
        texts: list[str],
        target: _Target,
        *,
        final: bool,
        options: SamplingOptions,
        count: _Count,
        engine_id: str,
    ) -> list[tuple[SequenceResult, bool]]:
        """One map or reduce step: a summary of each text, and whether it is still in another
        script than the target's after every way of asking.

        Asked plainly first (in the target language); a summary in another script is asked
        again insisting on the language, and one still off once more under the script's
        structured-output constraint (script_grammar.py), whose answer stands."""
        # A final paragraph and the map steps' partial summaries are sentences: under the
        # constraint they may end only at a sentence's end. Bullets and headlines need not.
        complete = not final or self.req.style == "paragraph"
        structured = script_constraint(target.script, complete=complete)
        attempts: list[tuple[bool, StructuredOutput | None]] = [(False, None)]
        if target.language is not None:
            attempts.append((True, None))
        if structured is not None:
            attempts.append((target.language is not None, structured))
        found: list[SequenceResult] = []
        pending = list(range(len(texts)))
        for attempt, (insist, constraint) in enumerate(attempts):
            requests = [
                self.dispatch.request(
                    self._prompt(texts[i], final=final, language=target.language, insist=insist),
                    replace(options, structured=constraint),
                )
                for i in pending
            ]
            suffix = f"-retry{attempt}" if attempt else ""
            results = await run_to_completion(self.engine, requests, f"{engine_id}{suffix}")
            for i, result in zip(pending, results, strict=True):
                count.add(result)
                if attempt:
                    found[i] = result.sequences[0]
                else:
                    found.append(result.sequences[0])
            pending = [i for i in pending if _off_script(found[i].text, target.script)]
            if not pending:
                break
        return [(seq, i in pending) for i, seq in enumerate(found)]


def _off_script(summary: str, expected: str | None) -> bool:
    found = script(summary)
    return expected is not None and found is not None and found != expected


def _check(req: SummarizeRequest, engine: Engine) -> None:
    max_tokens = req.max_length or DEFAULT_MAX_TOKENS[req.style]
    if max_tokens > engine.max_model_len // 2:
        raise InvalidRequestError(
            f"max_length may be at most half the context ({engine.max_model_len // 2} tokens).",
            param="max_length",
        )
    if req.min_length is not None and req.min_length > max_tokens:
        raise InvalidRequestError(
            f"min_length ({req.min_length}) exceeds the maximum length ({max_tokens}).",
            param="min_length",
        )


@dataclass(frozen=True, slots=True)
class PreparedSummary:
    id: str
    model: str
    request: SummarizeRequest
    texts: list[str]
    cost: int  # engine sequences, estimated (admission control)
    dispatch: Dispatch

    @property
    def priority(self) -> int:
        return self.dispatch.priority


def prepare(
    req: SummarizeRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedSummary:
    """Validate (no engine work): every 4xx but a too-long text is raised here."""
    model = served_model(req.model, settings, engine)
    param = "text" if req.text is not None else "texts"
    texts = inputs(req.text, req.texts, param=param, settings=settings)
    _check(req, engine)
    cost = costs.of_summary(texts, engine.max_model_len)
    dispatch = Dispatch.of(caller, model.adapter)
    return PreparedSummary(new_id("summarize"), model.name, req, texts, cost, dispatch)


async def summarize(prepared: PreparedSummary, engine: Engine) -> SummarizeResponse:
    summarizer = _Summarizer(prepared.request, engine, prepared.id, prepared.dispatch)
    done = await gather_or_cancel([summarizer.run(i, t) for i, t in enumerate(prepared.texts)])
    prompt = sum(c.prompt for _, c in done)
    completion = sum(c.completion for _, c in done)
    return envelope(
        "summarize",
        id=prepared.id,
        model=prepared.model,
        results=[r for r, _ in done],
        usage=Usage.of(prompt, completion),
    )
