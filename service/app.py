"""`create_app(settings)`: the FastAPI app, its routes and the lifespan that owns the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.config import Settings
from service.engine.base import Engine
from service.http.deps import GatewayState
from service.http.disconnect import CancelOnDisconnect
from service.http.encode import install_error_handlers
from service.http.observability import install_observability
from service.http.security import install_security
from service.routes import health, metrics, openai, responses, tasks
from service.runtime.admission import Admission
from service.runtime.engine_lifecycle import EngineState
from service.services.openai.response_store import ResponseStore
from service.telemetry.metrics import serve_metrics_port


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

    admission = Admission(  # sized from the engine's batch once it has started
        max_inflight=settings.max_inflight_sequences or 1,
        max_queued=settings.max_queued_sequences or 0,
    )
    state = EngineState(factory, settings, admission)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_metrics_port = None
        if settings.metrics_port is not None:
            stop_metrics_port = serve_metrics_port(
                gateway.metrics, settings.host, settings.metrics_port
            )
        state.begin()
        try:
            yield
        finally:
            await state.stop()
            await gateway.observability.aclose()
            if stop_metrics_port is not None:
                stop_metrics_port()

    app = FastAPI(
        title="LLM gateway",
        summary="OpenAI-compatible API on an in-process vLLM engine",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(CancelOnDisconnect)  # innermost: cancels only the handler
    security = install_security(app, settings)  # API keys, rate limits, body size, CORS
    observability = install_observability(app, settings)  # last added: the outermost
    admission.attach_gauges(observability.metrics.queue_depth, observability.metrics.sequences)
    store = ResponseStore(
        entries=settings.response_store_entries, ttl_seconds=settings.response_store_ttl_seconds
    )
    gateway = GatewayState(settings, state, admission, observability, security, store)
    app.state.gateway = gateway
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(openai.router)
    app.include_router(responses.router)
    app.include_router(tasks.router)
    return app
