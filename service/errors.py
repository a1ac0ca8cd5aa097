"""The gateway's exception tree, and the one place that turns it into OpenAI's error body.

    GatewayError                      any error a client sees: status, type, code, param
    ├── InvalidRequestError           400 invalid_request_error (bad value, bad combination)
    │   ├── UnsupportedParameterError 400 a field we do not implement that would change the result
    │   └── ContextLengthError        400 context_length_exceeded: prompt + max_tokens > context
    ├── AuthenticationError           401 invalid_api_key: no key, or a wrong one
    ├── PermissionDeniedError         403 permission_denied: an admin endpoint, a non-admin key
    ├── NotFoundError                 404 not_found: a switched-off endpoint, an unknown response id
    ├── ModelNotFoundError            404 model_not_found
    ├── PayloadTooLargeError          413 an input beyond the configured size limits
    ├── RateLimitError                429 rate_limit_exceeded: the caller's own limit (Retry-After)
    ├── EngineFailureError            500 the engine failed on a valid request
    ├── ServiceUnavailableError       503 (Retry-After) ...
    │   ├── EngineUnavailableError        engine_unavailable: starting, or not healthy
    │   ├── EngineDeadError               engine_dead: stopped or stalled; the process will exit
    │   ├── OverloadedError               overloaded: admission queue full, or its wait too long
    │   ├── RateLimitUnavailableError     rate_limit_unavailable: Redis down, redis_failure=closed
    │   ├── StoreUnavailableError         store_unavailable: the store's database cannot be used
    │   └── DrainingError                 draining: shutting down, finishing in-flight requests
    └── DeadlineExceededError         504 timeout: the request's deadline passed

`ERROR_TABLE` below lists every status with its OpenAI `type`/`code` and the metrics outcome;
`outcome_for` is the one mapping from a status to an outcome. A client that leaves before its
answer is outcome `aborted`, logged with nginx's 499 (nothing is sent).

Apart from the tree, `ConfigurationError` is a setting that cannot work with the model (e.g. a
tool-call parser whose special tokens the tokenizer lacks): start-up fails with it, naming the
setting.

Routes and services raise these; `service/http/encode.py` is the one place that turns them
into a response (a JSON body, a raw ASGI answer, or an in-band SSE event). This module imports
nothing from the package: every layer may raise these errors.

The Messages API's routes (`/v1/messages...`) answer the same errors in Anthropic's shape,
`{"type": "error", "error": {"type", "message"}, "request_id"}`: `ANTHROPIC_ERROR_TYPES` gives
the type by status, the field a message is about leads it (Anthropic has no `param`), and our
overload is Anthropic's 529 `overloaded_error` (the other 503s stay 503, `overloaded_error`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, get_args

logger = logging.getLogger(__name__)


Outcome = Literal["success", "client_error", "rejected", "aborted", "timeout", "engine_error"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left; logged, never sent


@dataclass(frozen=True, slots=True)
class ErrorRow:
    status: int
    error_type: str
    code: str | None
    outcome: Outcome
    meaning: str


# The one error table: what a client sees and how metrics and logs count it.
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(400, "invalid_request_error", "invalid_value", "client_error", "bad field value"),
    ErrorRow(400, "invalid_request_error", "invalid_json", "client_error", "body is not JSON"),
    ErrorRow(400, "invalid_request_error", "unknown_parameter", "client_error", "unknown field"),
    ErrorRow(400, "invalid_request_error", "unsupported_parameter", "client_error", "unbuilt"),
    ErrorRow(400, "invalid_request_error", "context_length_exceeded", "client_error", "too long"),
    ErrorRow(401, "invalid_request_error", "invalid_api_key", "client_error", "no or wrong key"),
    ErrorRow(403, "invalid_request_error", "permission_denied", "client_error", "not an admin"),
    ErrorRow(404, "invalid_request_error", "model_not_found", "client_error", "unknown model"),
    ErrorRow(404, "invalid_request_error", "not_found", "client_error", "unknown path or id"),
    ErrorRow(405, "invalid_request_error", "method_not_allowed", "client_error", "wrong method"),
    ErrorRow(413, "invalid_request_error", "payload_too_large", "client_error", "over a limit"),
    ErrorRow(429, "requests", "rate_limit_exceeded", "rejected", "caller's request rate"),
    ErrorRow(429, "tokens", "rate_limit_exceeded", "rejected", "caller's token rate"),
    ErrorRow(CLIENT_CLOSED_REQUEST, "", None, "aborted", "the client left (nothing sent)"),
    ErrorRow(500, "server_error", "engine_error", "engine_error", "engine failed a request"),
    ErrorRow(500, "server_error", "internal_error", "engine_error", "a bug in the gateway"),
    ErrorRow(503, "service_unavailable", "engine_unavailable", "rejected", "engine starting"),
    ErrorRow(503, "service_unavailable", "engine_dead", "engine_error", "engine died"),
    ErrorRow(503, "service_unavailable", "overloaded", "rejected", "queue full or wait too long"),
    ErrorRow(503, "service_unavailable", "rate_limit_unavailable", "rejected", "Redis down"),
    ErrorRow(503, "service_unavailable", "store_unavailable", "rejected", "database down"),
    ErrorRow(503, "service_unavailable", "draining", "rejected", "shutting down"),
    ErrorRow(504, "timeout_error", "timeout", "timeout", "the request's deadline passed"),
)
_OUTCOME_BY_CODE: dict[str | None, Outcome] = {row.code: row.outcome for row in ERROR_TABLE}


# Anthropic's error type by status, for the Messages API's routes; 529 is its "overloaded".
ANTHROPIC_OVERLOADED = 529
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    ANTHROPIC_OVERLOADED: "overloaded_error",
}


def outcome_for(status: int, code: str | None = None) -> Outcome:
    """The metrics outcome of a request answered with `status` (and error `code`, if known)."""
    if status < 400:
        return "success"
    if code is not None and code in _OUTCOME_BY_CODE:
        return _OUTCOME_BY_CODE[code]
    if status in (429, 503):
        return "rejected"
    if status in (408, 504):
        return "timeout"
    if status == CLIENT_CLOSED_REQUEST:
        return "aborted"
    if status < 500:
        return "client_error"
    return "engine_error"


class ConfigurationError(Exception):
    """A setting that cannot work with this model or engine; start-up fails naming it."""


class GatewayError(Exception):
    status_code = 500
    error_type = "server_error"
    code: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After
    anthropic_status: int | None = None  # another status on Anthropic's surface (None: the same)

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None

    @property
    def anthropic_status_code(self) -> int:
        return self.anthropic_status or self.status_code

    def anthropic_body(self, request_id: str | None = None) -> dict[str, Any]:
        return anthropic_error_body(
            self.message, self.anthropic_status_code, param=self.param, request_id=request_id
        )


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"


class ContextLengthError(InvalidRequestError):
    code = "context_length_exceeded"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class RateLimitError(GatewayError):
    """`error_type` says which limit: "requests" or "tokens" (OpenAI's values)."""

    status_code = 429
    error_type = "requests"
    code = "rate_limit_exceeded"
    retry_after = 1

    def __init__(self, message: str, *, retry_after: int, limit: str = "requests") -> None:
        super().__init__(message, retry_after=max(1, retry_after))
        self.error_type = limit


class PermissionDeniedError(GatewayError):
    status_code = 403
    error_type = "invalid_request_error"
    code = "permission_denied"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class NotFoundError(GatewayError):
    """404 for a thing that does not exist here: an endpoint switched off, a stored response."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class ServiceUnavailableError(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    code = "engine_unavailable"
    retry_after = 5


class EngineUnavailableError(ServiceUnavailableError):
    code = "engine_unavailable"


class EngineDeadError(EngineUnavailableError):
    """The engine stopped or stalled; the process is exiting so that it gets restarted."""

    code = "engine_dead"
    retry_after = 10


class OverloadedError(ServiceUnavailableError):
    code = "overloaded"
    retry_after = 1
    anthropic_status = ANTHROPIC_OVERLOADED


class RateLimitUnavailableError(ServiceUnavailableError):
    """The shared rate limits (Redis) cannot be checked and `redis_failure` is `closed`."""

    code = "rate_limit_unavailable"
    retry_after = 1


class StoreUnavailableError(ServiceUnavailableError):
    """The store (SQLite under `data_dir`, or PostgreSQL at `database_url`) cannot be reached
    or stays locked past `database_timeout_seconds`; nothing was half-written."""

    code = "store_unavailable"
    retry_after = 5


class DrainingError(ServiceUnavailableError):
    code = "draining"
    retry_after = 5

    def __init__(
        self, message: str = "The server is shutting down; retry on another replica."
    ) -> None:
        super().__init__(message)


class DeadlineExceededError(GatewayError):
    status_code = 504
    error_type = "timeout_error"
    code = "timeout"


class EngineFailureError(GatewayError):
    status_code = 500
    error_type = "server_error"
    code = "engine_error"


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def anthropic_error_body(
    message: str, status: int, *, param: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """Anthropic's error body for `status`; the field the error is about leads the message."""
    error_type = ANTHROPIC_ERROR_TYPES.get(status)
    if error_type is None:
        error_type = "invalid_request_error" if status < 500 else "api_error"
    if param and param not in message:
        message = f"{param}: {message}"
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body
