"""Input limits: checks that depend on settings, so they are made here and not by the schemas,
always before any tokenization. Beyond a limit is a 413 naming the field."""

from __future__ import annotations

from collections.abc import Sequence

from service.config import Settings
from service.errors import PayloadTooLargeError


def check_count(count: int, limit: int, *, what: str, param: str) -> None:
    """At most `limit` items (messages, inputs, labels) in the field `param`."""
    if count > limit:
        raise PayloadTooLargeError(f"At most {limit} {what} per request; got {count}.", param=param)


def check_text(text: str, settings: Settings, *, param: str) -> None:
    """One text (a prompt, an input, a message's content) within `max_text_chars`."""
    if len(text) > settings.max_text_chars:
        raise PayloadTooLargeError(
            f"A text may have at most {settings.max_text_chars} characters; got {len(text)}.",
            param=param,
        )


def check_texts(texts: Sequence[str], settings: Settings, *, param: str) -> None:
    """A batch of texts: their number within `max_batch_size`, each within `max_text_chars`."""
    check_count(len(texts), settings.max_batch_size, what="inputs", param=param)
    for i, text in enumerate(texts):
        check_text(text, settings, param=f"{param}.{i}")
