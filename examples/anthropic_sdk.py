"""The gateway through the official `anthropic` SDK (Anthropic's Messages API): a message, the
same streamed, a forced tool call answered with a tool_result, and a token count.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/anthropic_sdk.py

LLM_GATEWAY_BASE_URL / LLM_GATEWAY_API_KEY point it elsewhere (the SDK sends the key as
x-api-key).
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import anthropic

TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "The current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
]


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "temperature": 21, "unit": "celsius"})


def served_model(base_url: str, api_key: str) -> str:
    """The served model's name, from the gateway's (OpenAI-shaped) /v1/models."""
    request = urllib.request.Request(
        f"{base_url}/v1/models", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        model: str = json.load(response)["data"][0]["id"]
    return model


def main() -> None:
    # The SDK takes the server's root: it adds /v1/messages itself.
    base_url = os.environ.get("LLM_GATEWAY_BASE_URL", "http://localhost:8000/v1")
    base_url = base_url.rstrip("/").removesuffix("/v1")
    api_key = os.environ.get("LLM_GATEWAY_API_KEY") or "unused"  # any value while auth is off
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key)
    model = served_model(base_url, api_key)
    question: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]

    message = client.messages.create(model=model, max_tokens=64, messages=question)
    text = "".join(block.text for block in message.content if block.type == "text")
    print("create:", text, f"({message.stop_reason}, request {message._request_id})")

    print("stream: ", end="")
    with client.messages.stream(model=model, max_tokens=64, messages=question) as stream:
        for piece in stream.text_stream:
            print(piece, end="", flush=True)
    print(f" ({stream.get_final_message().stop_reason})")

    weather: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.messages.create(
        model=model,
        max_tokens=100,
        messages=weather,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"},  # input valid against the schema
    )
    call = next(block for block in reply.content if block.type == "tool_use")
    print("call:", call.name, json.dumps(call.input), reply.stop_reason)
    answer = client.messages.create(
        model=model,
        max_tokens=60,
        tools=TOOLS,
        messages=[
            *weather,
            {"role": "assistant", "content": reply.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": get_weather(**call.input),  # type: ignore[arg-type]
                    }
                ],
            },
        ],
    )
    print("answer:", "".join(b.text for b in answer.content if b.type == "text"))

    counted = client.messages.count_tokens(model=model, messages=weather, tools=TOOLS)
    print("input tokens:", counted.input_tokens)


if __name__ == "__main__":
    main()
