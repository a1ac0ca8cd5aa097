"""The OpenAI-compatible surface: completions and chat completions."""
