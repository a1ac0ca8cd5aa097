"""Errors and retries through the openai SDK's machinery, against a real gateway (fake engine)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from llm_gateway import AsyncClient, Client, StreamError
from service.app import create_app
from service.config import Settings
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from service.errors import EngineFailureError, EngineUnavailableError
from tests.client.conftest import FakeGateway
from tests.conftest import FAKE_MODEL
from tests.servers import serve_in_thread

REQUEST_ID = "client-sdk-error-1"


def recording_http_client(
    statuses: list[int], on_response: Any = None, retry_afters: list[float] | None = None
) -> Any:
    """The SDK's own httpx client, with a hook that records every response's status."""

    def hook(response: Any) -> None:
        statuses.append(response.status_code)
        if retry_afters is not None and "retry-after" in response.headers:
            retry_afters.append(float(response.headers["retry-after"]))
        if on_response is not None:
            on_response(response)

    return openai.DefaultHttpxClient(event_hooks={"response": [hook]})


# --------------------------------------------------------------------------- status errors
def test_a_400_raises_bad_request_with_the_servers_message(client: Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        # valid JSON for the schema, rejected by the service: sampling knob without do_sample
        client.tasks.generate(
            prompt="Hi", temperature=0.5, extra_headers={"x-request-id": REQUEST_ID}
        )
    err = caught.value
    assert err.status_code == 400
    assert err.request_id == REQUEST_ID
    assert err.code == "invalid_combination" and err.param == "temperature"
    assert isinstance(err.body, dict)
    assert err.body["message"] == "temperature has no effect unless do_sample is true."
    assert err.body["message"] in err.message


def test_a_schema_error_is_the_servers_400_not_a_local_one(client: Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.tasks.summarize(text="Hi", style="haiku")  # type: ignore[arg-type]
    assert caught.value.param == "style"
    assert caught.value.code == "invalid_value"


def test_an_unknown_field_in_extra_body_is_named(client: Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.tasks.chat(message="Hi", extra_body={"tools": []})
    assert caught.value.code == "unknown_parameter" and caught.value.param == "tools"


def test_an_unknown_model_is_not_found(client: Client) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.tasks.classify(text="Hi", labels="sentiment", model="no-such-model")
    assert caught.value.code == "model_not_found"
    assert caught.value.request_id


async def test_async_errors_are_the_same(async_client: AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await async_client.tasks.chat(message="Hi", history=[], messages=[])
    assert caught.value.status_code == 400
    assert caught.value.request_id


def test_an_engine_failure_is_a_500_after_the_retries(gateway: FakeGateway) -> None:
    gateway.engine.fail_with = EngineFailureError("The engine failed to process the request.")
    statuses: list[int] = []
    client = Client(
        base_url=gateway.base_url, max_retries=1, http_client=recording_http_client(statuses)
    )
    with pytest.raises(openai.InternalServerError) as caught:
        client.tasks.chat(message="Hi")
    assert caught.value.code == "engine_error"
    assert statuses == [500, 500]  # the SDK retried once, as it does for any 5xx


# --------------------------------------------------------------------------- in-band errors
def test_an_error_after_the_stream_started_raises_stream_error(
    client: Client, gateway: FakeGateway
) -> None:
    gateway.engine.fail_with = EngineFailureError("The engine failed to process the request.")
    stream = client.tasks.generate(
        prompt="Hi", stream=True, extra_headers={"x-request-id": REQUEST_ID}
    )
    with pytest.raises(StreamError) as caught, stream:
        list(stream)
    err = caught.value
    assert isinstance(err, openai.APIError)
    assert err.code == "engine_error"
    assert err.message == "The engine failed to process the request."
    assert err.request_id == REQUEST_ID


async def test_async_stream_error(async_client: AsyncClient, gateway: FakeGateway) -> None:
    gateway.engine.fail_with = EngineFailureError("The engine failed to process the request.")
    stream = await async_client.tasks.chat(message="Hi", stream=True)
    with pytest.raises(StreamError) as caught:
        async with stream:
            [chunk async for chunk in stream]
    assert caught.value.code == "engine_error"
    assert caught.value.request_id == stream.request_id


# --------------------------------------------------------------------------- retries, timeouts
def test_a_503_is_retried_after_its_retry_after(gateway: FakeGateway) -> None:
    gateway.engine.fail_with = EngineUnavailableError("The engine is restarting.", retry_after=1)

    def heal(response: Any) -> None:
        if response.status_code == 503:
            gateway.engine.fail_with = None

    statuses: list[int] = []
    client = Client(
        base_url=gateway.base_url,
        max_retries=2,
        http_client=recording_http_client(statuses, on_response=heal),
    )
    start = time.monotonic()
    result = client.tasks.chat(message="Hi")
    elapsed = time.monotonic() - start
    assert result.results[0].reply == DEFAULT_REPLY
    assert statuses == [503, 200]
    assert elapsed >= 0.95  # the SDK waited Retry-After: 1, not its 0.5 s backoff


def test_a_slow_answer_times_out(gateway: FakeGateway) -> None:
    gateway.engine.gate = asyncio.Event()  # holds every generation until opened
    client = Client(base_url=gateway.base_url, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        client.tasks.generate(prompt="Hi", timeout=0.5)


async def test_async_timeout(gateway: FakeGateway) -> None:
    gateway.engine.gate = asyncio.Event()
    async with AsyncClient(base_url=gateway.base_url, max_retries=0, timeout=0.5) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.tasks.chat(message="Hi")


# --------------------------------------------------------------------------- auth, rate limits
API_KEY = "sk-client-test"
REQUESTS_PER_MINUTE = 20  # a token back every 3 s, so Retry-After is a few seconds


@pytest.fixture(scope="module")
def limited_gateway() -> Iterator[str]:
    settings = Settings(
        model=FAKE_MODEL,
        default_max_tokens=16,
        api_keys=[API_KEY],
        requests_per_minute=REQUESTS_PER_MINUTE,
    )
    engine = FakeEngine()
    with serve_in_thread(
        create_app(settings, engine_factory=lambda: engine), startup_timeout=60
    ) as url:
        yield f"{url}/v1"


def test_a_wrong_api_key_is_an_authentication_error(limited_gateway: str) -> None:
    with (
        Client(base_url=limited_gateway, api_key="sk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.tasks.chat(message="Hi")
    assert caught.value.code == "invalid_api_key"


def test_a_429_with_retry_after_is_retried_then_succeeds(limited_gateway: str) -> None:
    # Use the key's budget up without retries, until the gateway says 429.
    with Client(base_url=limited_gateway, api_key=API_KEY, max_retries=0) as eager:
        for _ in range(REQUESTS_PER_MINUTE * 3):
            try:
                eager.tasks.chat(message="Hi", max_tokens=1)
            except openai.RateLimitError as err:
                limited = err
                break
        else:
            pytest.fail("no 429 after three times the per-minute budget")
    assert limited.code == "rate_limit_exceeded" and limited.request_id
    retry_after = float(limited.response.headers["retry-after"])
    assert 0 < retry_after <= 60 / REQUESTS_PER_MINUTE + 1

    statuses: list[int] = []
    waits: list[float] = []
    with Client(
        base_url=limited_gateway,
        api_key=API_KEY,
        max_retries=2,
        http_client=recording_http_client(statuses, retry_afters=waits),
    ) as patient:
        start = time.monotonic()
        result = patient.tasks.chat(message="Hi")
        elapsed = time.monotonic() - start
    assert result.results[0].reply == DEFAULT_REPLY
    assert statuses[0] == 429 and statuses[-1] == 200
    assert len(waits) == statuses.count(429)
    assert elapsed >= sum(waits) - 0.05  # it waited as each Retry-After said
