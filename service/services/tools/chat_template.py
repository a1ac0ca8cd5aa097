"""Which chat template renders a request: the `chat_template` setting, else the model's own,
except that tools (or tool turns in the history) get the shipped Hermes template
(`templates/hermes_tools.jinja`: tools in the system turn, calls in `<tool_call>` tags, what the
`hermes` tool-call parser reads) when the model's own ignores tools."""

from __future__ import annotations

from functools import cache
from importlib import resources

from service.config import Settings
from service.engine.base import Tokenizer


@cache
def hermes_template() -> str:
    return (
        resources.files("service.services.tools")
        .joinpath("templates/hermes_tools.jinja")
        .read_text(encoding="utf-8")
    )


def chat_template(settings: Settings, tokenizer: Tokenizer, *, with_tools: bool) -> str | None:
    """The template for a request (None: the model's own)."""
    if settings.chat_template is not None:
        return settings.chat_template
    own = tokenizer.chat_template
    if with_tools and (own is None or "tools" not in own):
        return hermes_template()
    return None
