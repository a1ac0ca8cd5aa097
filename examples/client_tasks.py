"""The task API with this project's client: `llm_gateway.Client`, typed, synchronous.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/client_tasks.py

`Client()` reads LLM_GATEWAY_BASE_URL (else OPENAI_BASE_URL, else http://localhost:8000/v1) and
LLM_GATEWAY_API_KEY (else OPENAI_API_KEY; none is needed while the gateway's auth is off).
"""

from __future__ import annotations

import llm_gateway
from llm_gateway import Client
from llm_gateway.types import ChatTurn

REPORT = (
    "The city council met on Tuesday to vote on the new budget. After a long debate, the "
    "budget passed by seven votes to two. It funds two new parks, a library extension and "
    "repairs to the old bridge, and raises the parking fee in the centre by ten percent."
)


def main() -> None:
    client = Client(max_retries=3)  # 429 and 503 are retried after their Retry-After

    # /v1/generate: Hugging Face `generate` names and meanings. (`no_repeat_ngram_size` too, where
    # the server has it on: by default on CPU, not on GPU; docs/tasks.md.)
    generated = client.tasks.generate(
        prompt="Once upon a time", max_new_tokens=32, repetition_penalty=1.2
    )
    print("generate:", generated.results[0].generations[0].text)
    print(f"  request id {generated.request_id}, {generated.usage.total_tokens} tokens")

    # Streaming: an iterator of chunks; each carries deltas per input (`index`).
    print("generate, streaming: ", end="")
    with client.tasks.generate(prompt="The three primary colours are", stream=True) as stream:
        for chunk in stream:
            for delta in chunk.results:
                print(delta.delta, end="", flush=True)
    print()

    # /v1/summarize: any length (map-reduce beyond the context).
    summary = client.tasks.summarize(text=REPORT, style="bullets", max_length=80)
    print("summarize:", summary.results[0].summary)

    # /v1/classify: a preset or your own labels, a probability for every label.
    verdicts = client.tasks.classify(
        texts=["I love it", "It broke after a day"], labels="sentiment"
    )
    for verdict in verdicts.results:
        print(f"classify [{verdict.index}]: {verdict.label}", verdict.scores)

    custom = client.tasks.classify(
        text="My parcel has not arrived yet.",
        labels=["delivery", "refund", "other"],
        examples=[{"text": "I want my money back", "label": "refund"}],
    )
    print("classify (custom labels):", custom.results[0].label)

    # /v1/chat: a turn with a persona and history (models or plain dicts).
    reply = client.tasks.chat(
        message="Where is my order?",
        history=[
            ChatTurn(role="user", content="Hi, I ordered a lamp last week."),
            {"role": "assistant", "content": "Hello! How can I help with your order?"},
        ],
        preset="customer_service",
        max_tokens=64,
    )
    print("chat:", reply.results[0].reply)

    print("chat, streaming: ", end="")
    with client.tasks.chat(message="Say hello in French.", max_tokens=24, stream=True) as stream:
        for chunk in stream:
            print("".join(d.delta for d in chunk.results), end="", flush=True)
    print()

    # Errors are the openai SDK's typed exceptions, with the server's message and request id.
    try:
        client.tasks.generate(prompt="Hi", temperature=0.5)  # sampling knob without do_sample
    except llm_gateway.BadRequestError as err:
        print(f"error {err.status_code} {err.code} on {err.param!r}: {err.request_id}")

    # And the client is the openai SDK's: everything of `openai.OpenAI` works too.
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi!"}], max_tokens=16
    )
    print("chat.completions:", completion.choices[0].message.content)


if __name__ == "__main__":
    main()
