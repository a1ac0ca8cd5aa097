"""An OpenAI-compatible LLM inference gateway on an in-process vLLM engine.

`create_app` and `Settings` are imported on first use, so that importing a light module of the
package (`service.schemas`, which the client SDK `llm_gateway` shares) does not pull in the web
stack or the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.app import create_app
    from service.config import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.app import create_app

        return create_app
    if name == "Settings":
        from service.config import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
