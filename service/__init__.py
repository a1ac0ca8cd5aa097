"""An OpenAI-compatible LLM inference gateway on an in-process vLLM engine."""

from service.app import create_app
from service.config import Settings

__all__ = ["Settings", "create_app"]
