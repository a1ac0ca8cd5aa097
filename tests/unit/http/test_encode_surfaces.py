"""The error encoder's two shapes: which paths are the Messages API's, and every gateway error as
Anthropic's type and status there."""

from __future__ import annotations

import pytest

from service.errors import (
    AuthenticationError,
    ContextLengthError,
    DeadlineExceededError,
    DrainingError,
    EngineDeadError,
    EngineFailureError,
    EngineUnavailableError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitUnavailableError,
    StoreUnavailableError,
    anthropic_error_body,
)
from service.http.encode import on_messages_surface
from tests.api.helpers import http_scope


@pytest.mark.parametrize(
    ("path", "root", "anthropic"),
    [
        ("/v1/messages", "", True),
        ("/v1/messages/count_tokens", "", True),
        ("/v1/messages/batches/x", "", True),
        ("/gw/v1/messages", "/gw", True),
        ("/v1/messagesx", "", False),
        ("/v1/chat/completions", "", False),
        ("/v1/message", "", False),
        ("/gw/v1/chat/completions", "/gw", False),
    ],
)
def test_the_messages_surface_is_told_by_its_path(path: str, root: str, anthropic: bool) -> None:
    scope = http_scope(path)
    scope["root_path"] = root
    assert on_messages_surface(scope) is anthropic


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidRequestError("bad"), 400, "invalid_request_error"),
        (ContextLengthError("long"), 400, "invalid_request_error"),
        (AuthenticationError("who"), 401, "authentication_error"),
        (PermissionDeniedError("no"), 403, "permission_error"),
        (NotFoundError("gone"), 404, "not_found_error"),
        (ModelNotFoundError("which"), 404, "not_found_error"),
        (PayloadTooLargeError("big"), 413, "request_too_large"),
        (RateLimitError("slow", retry_after=3), 429, "rate_limit_error"),
        (EngineFailureError("broke"), 500, "api_error"),
        (EngineUnavailableError("starting"), 503, "overloaded_error"),
        (EngineDeadError("dead"), 503, "overloaded_error"),
        (RateLimitUnavailableError("redis"), 503, "overloaded_error"),
        (StoreUnavailableError("db"), 503, "overloaded_error"),
        (DrainingError(), 503, "overloaded_error"),
        (OverloadedError("busy"), 529, "overloaded_error"),
        (DeadlineExceededError("late"), 504, "timeout_error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, GatewayError) else str(value),
)
def test_every_error_has_its_anthropic_type_and_status(
    error: GatewayError, status: int, error_type: str
) -> None:
    assert error.anthropic_status_code == status
    body = error.anthropic_body("req-1")
    assert body == {
        "type": "error",
        "error": {"type": error_type, "message": error.message},
        "request_id": "req-1",
    }
    assert error.status_code == (503 if status == 529 else status)  # OpenAI's stays


def test_the_field_leads_the_message_unless_it_names_it() -> None:
    assert anthropic_error_body("Too long.", 400, param="messages")["error"]["message"] == (
        "messages: Too long."
    )
    named = anthropic_error_body("Unrecognized request argument supplied: foo", 400, param="foo")
    assert named["error"]["message"] == "Unrecognized request argument supplied: foo"
    assert "request_id" not in anthropic_error_body("x", 418)
    assert anthropic_error_body("x", 418)["error"]["type"] == "invalid_request_error"
    assert anthropic_error_body("x", 502)["error"]["type"] == "api_error"
