"""Prompt templates of the task API, in one place. Each becomes chat messages for the model's
own chat template, so instruction-tuned models get prompts in the format they were trained on."""

from __future__ import annotations

from service.schemas.tasks import ChatPreset

SUMMARIZE_SYSTEM = "You are a careful editor who writes faithful, concise summaries."

_STYLE = {
    "paragraph": "Write the summary as one short paragraph.",
    "bullets": "Write the summary as a list of bullet points, one per line, each starting "
    'with "- ".',
    "headline": "Write the summary as a single headline of at most a dozen words.",
}

CHUNK_INSTRUCTION = (
    "Summarize this part of a longer document in a few sentences, keeping names, numbers "
    "and conclusions."
)


def summarize_messages(
    text: str,
    *,
    style: str,
    language: str | None,
    focus: str | None,
    final: bool = True,
    insist: bool = False,
) -> list[dict[str, str]]:
    """Messages asking for a summary of `text` (`final=False`: an intermediate, map step;
    `insist`: the retry after a summary came back in another language).

    Every step asks for the language, map steps too: partial summaries written in another
    language would leave the final step to translate as well as summarize (a small model
    then drifts into the partials' language)."""
    parts = [_STYLE[style] if final else CHUNK_INSTRUCTION]
    if focus:
        parts.append(f"Focus on: {focus}.")
    if language:
        parts.append(f"Write it in {language}.")
        if insist:
            parts.append(f"Use only {language}: not one sentence in any other language.")
    instruction = " ".join(parts)
    return [
        {"role": "system", "content": SUMMARIZE_SYSTEM},
        {"role": "user", "content": f"{instruction}\n\nText:\n{text}\n\nSummary:"},
    ]


CHAT_PRESETS: dict[ChatPreset, str] = {
    "customer_service": (
        "You are a friendly, professional customer service agent. Answer politely and "
        "concisely, ask for the details you need (such as an order number), never invent "
        "policies, and offer to escalate to a human when you cannot help."
    ),
    "assistant": "You are a helpful, honest assistant. Answer clearly and concisely.",
}
