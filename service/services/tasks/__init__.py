"""The task API's logic: generate, summarize, classify and chat on the engine (no FastAPI here)."""
