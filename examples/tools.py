"""Tool calling through the official `openai` SDK: the model calls a function, the app runs it,
the result goes back, the model answers.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/tools.py

LLM_GATEWAY_BASE_URL / LLM_GATEWAY_API_KEY point it elsewhere.
"""

from __future__ import annotations

import json
import os
from typing import Any

from openai import OpenAI

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "temperature": 21, "unit": "celsius"})


def main() -> None:
    client = OpenAI(
        base_url=os.environ.get("LLM_GATEWAY_BASE_URL", "http://localhost:8000/v1"),
        api_key=os.environ.get("LLM_GATEWAY_API_KEY") or "unused",  # any value while auth is off
    )
    model = client.models.list().data[0].id
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(
        model=model,
        messages=messages,
        tools=TOOLS,
        tool_choice="required",  # always a call, with arguments that fit the schema
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=100,
    )
    message = reply.choices[0].message
    call = (message.tool_calls or [])[0]
    assert call.type == "function"
    print("call:", call.function.name, call.function.arguments, reply.choices[0].finish_reason)
    result = get_weather(**json.loads(call.function.arguments))
    messages += [message, {"role": "tool", "tool_call_id": call.id, "content": result}]
    final = client.chat.completions.create(
        model=model, messages=messages, tools=TOOLS, temperature=0, max_tokens=40
    )
    print("answer:", final.choices[0].message.content)


if __name__ == "__main__":
    main()
