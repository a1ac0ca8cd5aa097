"""OpenAI's Responses API through the official `openai` SDK: create, stream, continue with
`previous_response_id`, a function tool's output sent back, a background response, and a
conversation kept by the server.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/responses.py

LLM_GATEWAY_BASE_URL / LLM_GATEWAY_API_KEY point it elsewhere.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from openai import OpenAI

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
]


def main() -> None:
    client = OpenAI(
        base_url=os.environ.get("LLM_GATEWAY_BASE_URL", "http://localhost:8000/v1"),
        api_key=os.environ.get("LLM_GATEWAY_API_KEY") or "unused",  # any value while auth is off
    )
    model = client.models.list().data[0].id

    first = client.responses.create(
        model=model,
        instructions="Answer in one short sentence.",
        input="What is the capital of France?",
        max_output_tokens=32,
        temperature=0,
    )
    print("create:", first.output_text)

    print("stream: ", end="")
    with client.responses.stream(
        model=model, input="And of Italy?", previous_response_id=first.id, max_output_tokens=32
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                print(event.delta, end="", flush=True)
    print()

    called = client.responses.create(
        model=model,
        input="What is the weather in Paris?",
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=60,
        temperature=0,
    )
    call = next(item for item in called.output if item.type == "function_call")
    print("call:", call.name, call.arguments)
    result = json.dumps({"city": json.loads(call.arguments)["city"], "temperature": 21})
    answer = client.responses.create(
        model=model,
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": result}],
        max_output_tokens=40,
        temperature=0,
    )
    print("answer:", answer.output_text)

    background = client.responses.create(
        model=model, input="Write a haiku about the sea.", background=True, max_output_tokens=40
    )
    while background.status in ("queued", "in_progress"):  # the run goes on without us
        time.sleep(0.2)
        background = client.responses.retrieve(background.id)
    print("background:", background.status, background.output_text)

    conversation = client.conversations.create(metadata={"example": "responses.py"})
    for turn in ("My name is Ada.", "What is my name?"):
        reply = client.responses.create(
            model=model,
            conversation=conversation.id,
            input=turn,
            max_output_tokens=32,
            temperature=0,
        )
        print("conversation:", reply.output_text)
    items = client.conversations.items.list(conversation.id, order="asc")
    print("items:", [getattr(item, "role", item.type) for item in items])
    client.conversations.delete(conversation.id)


if __name__ == "__main__":
    main()
