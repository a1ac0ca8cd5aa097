"""The gateway through the official `openai` SDK, unchanged: only `base_url` (and a key) differ.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/openai_sdk.py

LLM_GATEWAY_BASE_URL / LLM_GATEWAY_API_KEY point it elsewhere.
"""

from __future__ import annotations

import os

from openai import OpenAI


def main() -> None:
    client = OpenAI(
        base_url=os.environ.get("LLM_GATEWAY_BASE_URL", "http://localhost:8000/v1"),
        api_key=os.environ.get("LLM_GATEWAY_API_KEY") or "unused",  # any value while auth is off
    )
    model = client.models.list().data[0].id
    print("model:", model)

    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=32,
    )
    print("chat:", reply.choices[0].message.content, f"(request {reply._request_id})")

    print("chat, streaming: ", end="")
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
        elif chunk.usage:
            print(f"\n  ({chunk.usage.completion_tokens} tokens)")

    completion = client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    print("completion:", repr(completion.choices[0].text))

    print("completion, streaming: ", end="")
    for piece in client.completions.create(
        model=model, prompt="Once upon a time", max_tokens=16, stream=True
    ):
        print(piece.choices[0].text if piece.choices else "", end="", flush=True)
    print()

    # vLLM's sampling extensions and structured outputs go in extra_body, as with `vllm serve`.
    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Is Paris in France? Answer yes or no."}],
        max_tokens=4,
        extra_body={"top_k": 20, "structured_outputs": {"choice": ["yes", "no"]}},
    )
    print("structured:", answer.choices[0].message.content)

    # The task API is reachable too, untyped (llm_gateway.Client types it: client_tasks.py).
    classified = client.post(
        "/classify",
        body={"texts": ["I love it", "It broke after a day"], "labels": "sentiment"},
        cast_to=object,
    )
    print("classify:", classified)


if __name__ == "__main__":
    main()
