"""The shipped prompt set and every request body the load tests send.

Prompts come from `prompts.jsonl` (texts written for this project): short questions, medium
instructions, story openings, reviews with a sentiment label and passages of 150-200 words, so
prompt lengths span roughly 10 to 300 tokens. Output lengths are drawn from a skewed
distribution (mostly short answers, a tail of long ones), as chat traffic tends to be.

Task-endpoint bodies are built through the pydantic models of `service.schemas.tasks`, the
contract, so a body that no longer validates fails here rather than as a 400 under load.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from service.schemas.tasks import (
    ChatTurn,
    ClassifyRequest,
    GenerateRequest,
    SummarizeRequest,
    TaskChatRequest,
)

PROMPTS_FILE = Path(__file__).with_name("prompts.jsonl")
Kind = Literal["question", "instruction", "opening", "review", "passage"]
KINDS: tuple[Kind, ...] = ("question", "instruction", "opening", "review", "passage")

# (max tokens, weight): most replies are short, a few are long.
OUTPUT_LENGTHS: tuple[tuple[int, float], ...] = ((32, 0.4), (64, 0.3), (128, 0.2), (256, 0.1))
SENTIMENT = ["positive", "negative", "neutral"]


@dataclass(frozen=True, slots=True)
class Prompt:
    kind: Kind
    text: str
    label: str | None = None


def load_prompts(path: Path = PROMPTS_FILE) -> list[Prompt]:
    """Every prompt of a JSON-lines file (`kind`, `text`, optional `label`)."""
    prompts: list[Prompt] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("kind") not in KINDS or not isinstance(row.get("text"), str) or not row["text"]:
            raise ValueError(f"{path}:{number}: needs a kind in {KINDS} and a non-empty text")
        prompts.append(Prompt(kind=row["kind"], text=row["text"], label=row.get("label")))
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def of_kind(prompts: list[Prompt], *kinds: Kind) -> list[Prompt]:
    """The prompts of some kinds, or all of them when the set has none of those kinds."""
    chosen = [p for p in prompts if p.kind in kinds]
    return chosen or prompts


def user_message(prompt: Prompt) -> str:
    """The text a user would send to a chat model for this prompt."""
    if prompt.kind == "passage":
        return f"Summarize the following text in two or three sentences.\n\n{prompt.text}"
    if prompt.kind == "review":
        return (
            "Is the sentiment of this review positive, negative or neutral? "
            f"Answer with one word.\n\nReview: {prompt.text}"
        )
    return prompt.text


def output_length(rng: random.Random) -> int:
    lengths, weights = zip(*OUTPUT_LENGTHS, strict=True)
    return int(rng.choices(lengths, weights=weights)[0])


# --------------------------------------------------------------------------- OpenAI API
def chat_body(
    model: str,
    prompt: Prompt,
    *,
    max_tokens: int,
    stream: bool,
    ignore_eos: bool = False,
    temperature: float = 0.0,
) -> dict[str, Any]:
    """A /v1/chat/completions body; streams ask for the usage chunk so token counts are exact."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": user_message(prompt)}],
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if ignore_eos:
        body["ignore_eos"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def completion_body(
    model: str, prompt: Prompt, *, max_tokens: int, stream: bool = False
) -> dict[str, Any]:
    """A /v1/completions body (raw prompt, no chat template)."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": user_message(prompt),
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent: one canonical encoding, so two servers get identical requests."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


# --------------------------------------------------------------------------- task API
def _dump(request: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = request.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    return dumped


def generate_body(rng: random.Random, prompts: list[Prompt], *, stream: bool) -> dict[str, Any]:
    """/v1/generate: one opening or a small batch of them, greedy or sampled."""
    pool = of_kind(prompts, "opening", "question")
    if rng.random() < 0.25:
        texts = [p.text for p in rng.sample(pool, k=min(len(pool), rng.randint(2, 4)))]
        request = GenerateRequest(prompts=texts, max_new_tokens=output_length(rng))
    else:
        request = GenerateRequest(
            prompt=rng.choice(pool).text,
            max_new_tokens=output_length(rng),
            do_sample=rng.random() < 0.5,
            stream=stream,
        )
    return _dump(request)


def summarize_body(rng: random.Random, prompts: list[Prompt]) -> dict[str, Any]:
    """/v1/summarize: one passage, sometimes two, in one of the three styles."""
    pool = of_kind(prompts, "passage")
    style = rng.choice(["paragraph", "bullets", "headline"])
    max_length = rng.choice([48, 96, 160])
    if len(pool) > 1 and rng.random() < 0.2:
        texts = [p.text for p in rng.sample(pool, k=2)]
        return _dump(SummarizeRequest(texts=texts, style=style, max_length=max_length))
    return _dump(SummarizeRequest(text=rng.choice(pool).text, style=style, max_length=max_length))


def classify_body(rng: random.Random, prompts: list[Prompt]) -> dict[str, Any]:
    """/v1/classify: a batch of 1-8 reviews against a preset or an explicit label list."""
    pool = of_kind(prompts, "review")
    texts = [rng.choice(pool).text for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        return _dump(ClassifyRequest(texts=texts, labels="sentiment"))
    return _dump(ClassifyRequest(texts=texts, labels=SENTIMENT, multi_label=rng.random() < 0.2))


def task_chat_body(rng: random.Random, prompts: list[Prompt], *, stream: bool) -> dict[str, Any]:
    """/v1/chat: a message with a short history, sometimes through the customer-service preset."""
    pool = of_kind(prompts, "question", "instruction", "review")
    history: list[ChatTurn] | None = None
    if rng.random() < 0.4:
        history = [
            ChatTurn(role="user", content=rng.choice(pool).text),
            ChatTurn(role="assistant", content="Sure, I can help with that."),
        ]
    request = TaskChatRequest(
        message=rng.choice(pool).text,
        history=history,
        preset="customer_service" if rng.random() < 0.3 else None,
        max_tokens=output_length(rng),
        temperature=0.0,
        stream=stream,
    )
    return _dump(request)
