"""`create_app(settings)`: the FastAPI app, its routes and the lifespan that owns the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from service.batches.drainer import Drainer
from service.config import Settings
from service.engine.base import EmbeddingEngine, Engine
from service.http.deps import GatewayState
from service.http.disconnect import CancelOnDisconnect
from service.http.encode import install_error_handlers
from service.http.keyring import TenantSync
from service.http.observability import install_observability
from service.http.security import install_security
from service.http.tenancy import install_tenancy
from service.routes import (
    anthropic,
    batches,
    conversations,
    embeddings,
    files,
    health,
    lora,
    metrics,
    openai,
    organization,
    playground,
    responses,
    tasks,
)
from service.runtime.admission import Admission
from service.runtime.engine_lifecycle import EngineState
from service.services.openai.responses import BackgroundResponses
from service.services.tasks.classify import warm_up_priors
from service.store import Store
from service.telemetry.metrics import serve_metrics_port


def engine_factory_for(settings: Settings) -> Callable[[], Engine]:
    if settings.engine == "fake":
        from service.engine.fake import FakeEngine

        # No model runner to keep: `auto` is on, as on CPU.
        return partial(FakeEngine, no_repeat_ngram=settings.no_repeat_ngram != "off")

    def build() -> Engine:
        # Imported here so that the app, its tests and the client never need vllm installed.
        from service.engine.vllm import VLLMEngine
        from service.weights import resolve_model

        return VLLMEngine.start(settings, model_path=resolve_model(settings))

    return build


def embedding_factory_for(settings: Settings) -> Callable[[], EmbeddingEngine] | None:
    """The embedding engine's factory, or None when `embedding_model` is off."""
    if settings.embedding_model is None:
        return None
    if settings.engine == "fake":
        from service.engine.fake_embeddings import FakeEmbeddingEngine

        return FakeEmbeddingEngine
    model = settings.embedding_model

    def build() -> EmbeddingEngine:
        from service.engine.vllm import VLLMEmbeddingEngine
        from service.weights import resolve_model

        return VLLMEmbeddingEngine.start(settings, model_path=resolve_model(settings, model))

    return build


async def open_store(gateway: GatewayState) -> None:
    """Migrate the store, then read the runtime keys and the budgets' totals from it."""
    await gateway.store.open()
    await gateway.tenants.start()


async def close_store(gateway: GatewayState) -> None:
    """Write the usage counted last, then close the store."""
    await gateway.tenants.stop()
    await gateway.store.close()


def admission_for(settings: Settings, *, embedding: bool = False) -> Admission:
    """An engine's admission, sized from the engine's batch once it has started (the embedding
    engine's has no settings of its own)."""
    return Admission(
        max_inflight=(None if embedding else settings.max_inflight_sequences) or 1,
        max_queued=(None if embedding else settings.max_queued_sequences) or 0,
        max_queue_wait=None if embedding else settings.max_queue_wait_seconds,
        fair_share=settings.fair_share,
        sharing_window=settings.fair_share_window_seconds,
        reserved_slots=settings.fair_share_reserved_slots,
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: Callable[[], Engine] | None = None,
    embedding_factory: Callable[[], EmbeddingEngine] | None = None,
) -> FastAPI:
    """Build the app. `engine_factory` replaces the vLLM engine (tests pass a fake one); a
    caller that passes it passes `embedding_factory` too when it wants embeddings (otherwise
    none starts, whatever `embedding_model` says, so a fake-engine app never loads a model)."""
    settings = settings or Settings()
    factory = engine_factory or engine_factory_for(settings)
    if embedding_factory is None and engine_factory is None:
        embedding_factory = embedding_factory_for(settings)

    admission = admission_for(settings)
    embedding_admission = admission_for(settings, embedding=True)
    state = EngineState(
        factory,
        settings,
        admission,
        embedding_factory=embedding_factory,
        embedding_admission=embedding_admission,
        warm_ups=[partial(warm_up_priors, settings=settings)],
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_metrics_port = None
        if settings.metrics_port is not None:
            stop_metrics_port = serve_metrics_port(
                gateway.metrics, settings.host, settings.metrics_port
            )
        drainer = Drainer(gateway) if settings.batch_drain else None
        try:
            await open_store(gateway)  # migrated before the engine starts, or no start
            state.begin()
            gateway.responses.begin()
            if drainer is not None:  # runs batch lines once the engine is ready
                drainer.start()
            yield
        finally:
            if drainer is not None:
                await drainer.stop()
            await gateway.responses.stop()  # before the engine: its runs end as failed
            await state.stop()
            await close_store(gateway)
            await gateway.security.aclose()
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
    store = Store.from_settings(settings)  # opened in the lifespan
    meter = install_tenancy(app, store)  # budgets and usage, inside the key check
    page_paths = playground.PATHS if settings.playground_enabled else frozenset()
    # API keys, rate limits, body size, CORS
    security = install_security(app, settings, page_paths=page_paths)
    observability = install_observability(app, settings)  # last added: the outermost
    telemetry = observability.metrics
    admission.attach_gauges(telemetry.queue_depth, telemetry.sequences, telemetry.queue_wait)
    security.attach_metrics(telemetry)
    background = BackgroundResponses(store, settings)
    tenants = TenantSync.build(meter, security, settings, store, telemetry)
    gateway = GatewayState(
        settings, state, admission, observability, security, background, store, tenants
    )
    app.state.gateway = gateway
    include_routers(app, settings)
    return app


def include_routers(app: FastAPI, settings: Settings) -> None:
    """Every API surface's router; the optional ones only when their setting is on."""
    for router in (
        health.router,
        metrics.router,
        openai.router,
        responses.router,
        conversations.router,
        anthropic.router,
        tasks.router,
        embeddings.router,
        organization.router,
        files.router,
        batches.router,
    ):
        app.include_router(router)
    if settings.enable_lora_runtime_updates:  # else these paths are 404s, as on `vllm serve`
        app.include_router(lora.router)
    if settings.playground_enabled:
        app.include_router(playground.router)
