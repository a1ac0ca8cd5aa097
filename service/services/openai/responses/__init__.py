"""`/v1/responses`: OpenAI's Responses API on the chat path.

A request becomes a chat request (`request.py`), runs as one (`run.py`), and its answer becomes
output items (`output.py`): a message with `output_text`, function calls, and reasoning when a
reasoning parser is set. Streams are chat chunks turned into the Responses event sequence
(`events.py`). Stored responses (`store.py`) serve `previous_response_id` and GET/DELETE.
"""

from service.services.openai.responses.request import PreparedResponse, prepare
from service.services.openai.responses.run import complete, stream
from service.services.openai.responses.store import ResponseStore

__all__ = ["PreparedResponse", "ResponseStore", "complete", "prepare", "stream"]
