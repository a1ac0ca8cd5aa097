"""Load tests (Locust scenarios) and the A/B benchmark against vLLM's own OpenAI server.

`workload` holds the shipped prompt set and every request body; it imports neither Locust nor
httpx, so the benchmark, the locustfile and the tests share it.
"""
