"""Label presets for /v1/classify: labels, short descriptions, and how the answer begins.

The answer's opening words were chosen on evals/data/dev with the default 135M model: the label
is scored as the natural next word of "The sentiment of this text is", which the model finds far
likelier (and so more telling) than a bare label at the start of its turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.schemas.tasks import LabelPreset

# Custom label sets: the answer begins with this, then the label.
CUSTOM_ANSWER = "Category:"


@dataclass(frozen=True, slots=True)
class Preset:
    subject: str  # what is classified: "Classify the {subject} of the user's text ..."
    answer: str  # the assistant turn's first words; the label follows after a space
    labels: tuple[str, ...]
    descriptions: tuple[tuple[str, str], ...] = ()


PRESETS: dict[LabelPreset, Preset] = {
    "sentiment": Preset(
        subject="sentiment",
        answer="The sentiment of this text is",
        labels=("positive", "negative", "neutral"),
    ),
    "news_topic": Preset(
        subject="topic",
        answer="The topic of this text is",
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
        answer="This message is about",
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
