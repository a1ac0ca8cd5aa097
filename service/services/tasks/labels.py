"""Label presets for /v1/classify: a subject for the instruction, labels and short descriptions."""

from __future__ import annotations

from dataclasses import dataclass

from service.schemas.tasks import LabelPreset


@dataclass(frozen=True, slots=True)
class Preset:
    subject: str  # what is classified: "Classify the {subject} of the user's text ..."
    labels: tuple[str, ...]
    descriptions: tuple[tuple[str, str], ...] = ()


PRESETS: dict[LabelPreset, Preset] = {
    "sentiment": Preset(
        subject="sentiment",
        labels=("positive", "negative", "neutral"),
    ),
    "news_topic": Preset(
        subject="topic",
        labels=("world", "sports", "business", "science and technology"),
        descriptions=(
            ("world", "politics, diplomacy, conflicts and disasters around the world"),
            ("sports", "games, athletes, teams and competitions"),
            ("business", "companies, markets, the economy and money"),
            ("science and technology", "research, space, medicine, computers and gadgets"),
        ),
    ),
    "customer_intent": Preset(
        subject="intent",
        labels=("billing", "technical support", "cancellation", "shipping", "general inquiry"),
        descriptions=(
            ("billing", "charges, invoices, payments and refunds"),
            ("technical support", "something does not work: errors, log-in, set-up"),
            ("cancellation", "ending a subscription, account, contract or order"),
            ("shipping", "delivery, tracking and addresses"),
            ("general inquiry", "any other question about the company or its products"),
        ),
    ),
}
