"""The task API with `llm_gateway.AsyncClient`: concurrent requests and async streams.

    make serve                    # in another terminal (or any running gateway)
    .venv/bin/python examples/async_client.py

The gateway batches concurrent requests together (continuous batching), so a `gather` of many
small tasks finishes far sooner than running them one by one.
"""

from __future__ import annotations

import asyncio

from llm_gateway import AsyncClient

REVIEWS = [
    "Absolutely love this kettle, it boils in a minute.",
    "The handle broke after two days. Very disappointed.",
    "It is a kettle. It boils water.",
    "Best purchase this year, my whole family uses it.",
]


async def main() -> None:
    async with AsyncClient(max_retries=3) as client:
        # Many requests at once: one classify per review, and a summary of them all.
        verdicts, summary = await asyncio.gather(
            asyncio.gather(
                *(client.tasks.classify(text=review, labels="sentiment") for review in REVIEWS)
            ),
            client.tasks.summarize(text=" ".join(REVIEWS), style="headline", max_length=32),
        )
        for review, verdict in zip(REVIEWS, verdicts, strict=True):
            print(f"{verdict.results[0].label:>8}  {review}")
        print("summary:", summary.results[0].summary)

        # A batch in one request: `texts` / `prompts` answer with one result per input.
        batch = await client.tasks.generate(
            prompts=["Roses are red,", "The quick brown fox"], max_new_tokens=12
        )
        for result in batch.results:
            print(f"generate [{result.index}]:", result.generations[0].text)

        # Async streaming.
        print("chat, streaming: ", end="")
        stream = await client.tasks.chat(
            message="Give me one tip for a good night's sleep.",
            preset="assistant",
            max_tokens=48,
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                print("".join(d.delta for d in chunk.results), end="", flush=True)
                if chunk.usage:
                    print(f"\n  ({chunk.usage.completion_tokens} tokens, {stream.request_id})")


if __name__ == "__main__":
    asyncio.run(main())
