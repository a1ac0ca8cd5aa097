"""`/v1/responses`: OpenAI's Responses API on the chat path.

A request becomes a chat request (`request.py`: with the conversation it continues, from a
stored response or a conversation's items), runs as one (`run.py`), and its answer becomes
output items (`output.py`): a message with `output_text`, function calls, and reasoning when a
reasoning parser is set. Streams are chat chunks turned into the Responses event sequence
(`events.py`). Responses are kept in the store (`service/store/responses.py`); background runs
(`background.py`) belong to the app, and their streams' events are kept and followed
(`event_log.py`). `items.py` maps items to chat messages and to a conversation's items.
"""

from service.services.openai.responses.background import BackgroundResponses
from service.services.openai.responses.events import ResponseEvent
from service.services.openai.responses.request import PreparedResponse, prepare
from service.services.openai.responses.run import complete, stream

__all__ = [
    "BackgroundResponses",
    "PreparedResponse",
    "ResponseEvent",
    "complete",
    "prepare",
    "stream",
]
