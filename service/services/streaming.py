"""Server-sent events in OpenAI's framing: `data: {json}` ... `data: [DONE]`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from service import context
from service.errors import DeadlineExceededError, EngineFailureError, GatewayError, error_body

if TYPE_CHECKING:
    from service.admission import Permit

logger = logging.getLogger(__name__)

DONE = "[DONE]"


async def openai_events(
    payloads: AsyncIterator[str], *, deadline: float | None = None, permit: Permit | None = None
) -> AsyncIterator[str]:
    """Pass payloads through, then [DONE]; an error after the stream started becomes an event.

    The HTTP status is already 200 by then, so the error goes in-band, in the same shape as a
    non-streaming error body, and the stream still ends with [DONE] so clients stop cleanly.
    Past `deadline` (loop time) the stream ends with a 504 `timeout` event. Whatever ends it,
    the payload generator is closed at once (which aborts its engine requests) and `permit`
    is released.
    """
    try:
        if deadline is None:
            async for payload in payloads:
                yield payload
        else:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        payload = await anext(payloads)
                except StopAsyncIteration:
                    break
                yield payload
    except TimeoutError:
        yield _error_event(DeadlineExceededError("The stream did not finish before its deadline."))
    except GatewayError as err:
        yield _error_event(err)
    except Exception as err:  # never leak a stack trace into the stream
        logger.exception("stream failed", exc_info=err)
        yield _error_event(EngineFailureError("The server had an error while streaming."))
    finally:
        close = getattr(payloads, "aclose", None)
        if close is not None:
            await close()
        if permit is not None:
            permit.release()
    yield DONE


def _error_event(err: GatewayError) -> str:
    import json

    ctx = context.current()
    if ctx is not None:  # the status line said 200; metrics and the access log say what happened
        ctx.stream_error_status = err.status_code
        ctx.error_code = err.code
    body = error_body(err.message, err.error_type, param=err.param, code=err.code)
    return json.dumps(body)
