"""service.errors: the exception tree and the mapping of validation errors to OpenAI's body."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from service.errors import (
    ContextLengthError,
    EngineFailureError,
    EngineUnavailableError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    StoreUnavailableError,
    UnsupportedParameterError,
    error_body,
)
from service.http.encode import validation_error


def error(
    error_type: str, loc: tuple[int | str, ...], msg: str = "bad", **ctx: Any
) -> dict[str, Any]:
    """One pydantic error dict, as `RequestValidationError.errors()` holds them."""
    raw = {"type": error_type, "loc": loc, "msg": msg, "input": None}
    return {**raw, "ctx": ctx} if ctx else raw


@pytest.mark.parametrize(
    ("exc_type", "status", "error_type", "code"),
    [
        pytest.param(InvalidRequestError, 400, "invalid_request_error", None, id="invalid"),
        pytest.param(
            UnsupportedParameterError,
            400,
            "invalid_request_error",
            "unsupported_parameter",
            id="unsupported",
        ),
        pytest.param(
            ContextLengthError,
            400,
            "invalid_request_error",
            "context_length_exceeded",
            id="context-length",
        ),
        pytest.param(
            ModelNotFoundError,
            404,
            "invalid_request_error",
            "model_not_found",
            id="model-not-found",
        ),
        pytest.param(
            EngineUnavailableError,
            503,
            "service_unavailable",
            "engine_unavailable",
            id="unavailable",
        ),
        pytest.param(
            StoreUnavailableError,
            503,
            "service_unavailable",
            "store_unavailable",
            id="store-unavailable",
        ),
        pytest.param(EngineFailureError, 500, "server_error", "engine_error", id="failure"),
    ],
)
def test_exception_tree(
    exc_type: type[GatewayError], status: int, error_type: str, code: str | None
) -> None:
    exc = exc_type("Something went wrong.", param="field")
    assert isinstance(exc, GatewayError)
    assert exc.status_code == status
    assert str(exc) == "Something went wrong."
    assert exc.body() == {
        "error": {
            "message": "Something went wrong.",
            "type": error_type,
            "param": "field",
            "code": code,
        }
    }


def test_the_400_family_are_invalid_request_errors() -> None:
    assert issubclass(UnsupportedParameterError, InvalidRequestError)
    assert issubclass(ContextLengthError, InvalidRequestError)


def test_code_can_be_given_per_instance_without_changing_the_class() -> None:
    assert InvalidRequestError("x", code="invalid_json").code == "invalid_json"
    assert InvalidRequestError("x").code is None


def test_error_body_shape() -> None:
    assert error_body("m", "t") == {
        "error": {"message": "m", "type": "t", "param": None, "code": None}
    }


def test_no_errors_is_a_generic_400() -> None:
    mapped = validation_error(RequestValidationError([]))
    assert isinstance(mapped, InvalidRequestError)
    assert mapped.param is None
    assert mapped.message


def test_an_extra_field_is_an_unknown_parameter() -> None:
    mapped = validation_error(
        RequestValidationError([error("extra_forbidden", ("body", "foo"))], body={"foo": 1})
    )
    assert (mapped.param, mapped.code, mapped.status_code) == ("foo", "unknown_parameter", 400)
    assert "foo" in mapped.message


def test_an_unsupported_parameter_keeps_its_message_and_names_the_field() -> None:
    raw = error("unsupported_parameter", ("body",), "'tools' is not supported.", param="tools")
    mapped = validation_error(RequestValidationError([raw], body={"tools": []}))
    assert isinstance(mapped, UnsupportedParameterError)
    assert (mapped.param, mapped.message) == ("tools", "'tools' is not supported.")


def test_invalid_json() -> None:
    raw = error("json_invalid", ("body", 12), "JSON decode error")
    mapped = validation_error(RequestValidationError([raw], body=b'{"model": '))
    assert (mapped.code, mapped.param, mapped.status_code) == ("invalid_json", None, 400)


def test_a_bad_value_names_the_field_in_param_and_message() -> None:
    raw = error("less_than_equal", ("body", "temperature"), "Input should be <= 2")
    mapped = validation_error(RequestValidationError([raw], body={"temperature": 3}))
    assert (mapped.param, mapped.code) == ("temperature", "invalid_value")
    assert "temperature" in mapped.message
    assert "Input should be <= 2" in mapped.message


def test_a_param_in_the_error_context_wins_over_the_location() -> None:
    raw = error("value_error", ("body",), "needs stream", param="stream_options")
    mapped = validation_error(RequestValidationError([raw], body={"stream_options": {}}))
    assert mapped.param == "stream_options"


def test_the_first_error_is_reported() -> None:
    errors = [error("missing", ("body", "model")), error("missing", ("body", "messages"))]
    assert validation_error(RequestValidationError(errors, body={})).param == "model"


def test_a_specific_union_branch_error_beats_a_wrong_type_one() -> None:
    # content: str | list[TextPart], given [{"type": "image_url", ...}]: pydantic reports the
    # str branch ("not a string") first; the client needs to hear about the image part.
    loc = ("body", "messages", 0, "user", "content")
    body = {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
    errors = [
        error("string_type", (*loc, "str"), "Input should be a valid string"),
        error(
            "unsupported_parameter",
            (*loc, "list[TextPart]", 0, "type"),
            "Content parts of type 'image_url' are not supported.",
            kind="image_url",
        ),
    ]
    mapped = validation_error(RequestValidationError(errors, body=body))
    assert isinstance(mapped, UnsupportedParameterError)
    assert mapped.param == "messages.0.content.0.type"


@pytest.mark.parametrize(
    ("kind", "loc", "body", "param"),
    [
        pytest.param(
            "string_type",
            ("body", "stop", "str"),
            {"stop": [""]},
            "stop",
            id="smart-union-tag-last",
        ),
        pytest.param(
            "greater_than_equal",
            ("body", "prompt", "list[list[int]]", 1, 0),
            {"prompt": [[1], [-1]]},
            "prompt.1.0",
            id="smart-union-tag-inside",
        ),
        pytest.param(
            "missing",
            ("body", "messages", 0, "user", "content"),
            {"messages": [{"role": "user"}]},
            "messages.0.content",
            id="discriminator-tag",
        ),
        pytest.param("missing", ("body", "model"), {}, "model", id="missing-field-kept"),
        pytest.param(
            "less_than_equal",
            ("body", "logit_bias", "5"),
            {"logit_bias": {"5": 200}},
            "logit_bias.5",
            id="dict-key-kept",
        ),
    ],
)
def test_param_is_the_field_as_the_client_wrote_it(
    kind: str, loc: tuple[int | str, ...], body: dict[str, Any], param: str
) -> None:
    mapped = validation_error(RequestValidationError([error(kind, loc)], body=body))
    assert mapped.param == param
