"""`/v1/messages`: Anthropic's Messages API on the same engine and the same shared core as the
OpenAI surface.

A request becomes one engine request (`prepare.py`: the conversation through the chat template,
`conversation.py`; the tools as the shared tool plan, `tools.py`; `max_tokens` clamped to the
context), runs whole or streamed (`run.py`), and its output, read by the tool plan's reader,
becomes content blocks and a stop reason (`output.py`) or, streamed, Anthropic's event sequence
(`events.py`). `count_tokens` renders the same prompt and counts it.
"""

from service.services.anthropic.prepare import PreparedMessages, count_tokens, prepare
from service.services.anthropic.run import complete, stream

__all__ = ["PreparedMessages", "complete", "count_tokens", "prepare", "stream"]
