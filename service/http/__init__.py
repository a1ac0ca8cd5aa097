"""The ASGI edge: app state and dependencies, the error encoder, middleware (observability,
API keys, rate limits, body limit, disconnects), SSE responses and the request guard."""
