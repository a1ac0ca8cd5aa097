"""`create_app(settings)`: the FastAPI app, its routes and the lifespan that owns the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.config import Settings
from service.engine.base import Engine
from service.errors import install_error_handlers
from service.middleware import install_observability
from service.routes import health, openai, tasks
from service.state import EngineState


def engine_factory_for(settings: Settings) -> Callable[[], Engine]:
    if settings.engine == "fake":
        from service.engine.fake import FakeEngine

        return FakeEngine

    def build() -> Engine:
        # Imported here so that the app, its tests and the client never need vllm installed.
        from service.engine.vllm import VLLMEngine
        from service.models import resolve_model

        return VLLMEngine.start(settings, model_path=resolve_model(settings))

    return build


def create_app(
    settings: Settings | None = None, *, engine_factory: Callable[[], Engine] | None = None
) -> FastAPI:
    """Build the app. `engine_factory` replaces the vLLM engine (tests pass a fake one)."""
    settings = settings or Settings()
    factory = engine_factory or engine_factory_for(settings)

    state = EngineState(factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.begin()
        try:
            yield
        finally:
            await state.stop()
            await app.state.observability.aclose()

    app = FastAPI(
        title="LLM gateway",
        summary="OpenAI-compatible API on an in-process vLLM engine",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine_state = state
    install_error_handlers(app)
    install_observability(app, settings)  # after other middleware: the last added is outermost
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(tasks.router)
    return app
