"""The served-model registry: the base model, its LoRA adapters, and the embedding model.

A request's `model` names one of them; any other name is a 404 naming `model`. Naming an
adapter selects it for the request's engine work (`RequestContext.adapter`, which
`services/generation.py` hands to the engine, as it does the priority).
"""

from __future__ import annotations

from service.config import Settings
from service.engine.base import Engine
from service.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
)
from service.schemas.common import ModelCard
from service.telemetry import context


def select_model(requested: str, settings: Settings, engine: Engine) -> str:
    """`requested` when it is the base model or a loaded adapter (selected for the request)."""
    if requested == settings.model_name:
        adapter = None
    elif requested in engine.adapters():
        adapter = requested
    else:
        names = ", ".join(f"'{name}'" for name in [settings.model_name, *engine.adapters()])
        raise ModelNotFoundError(
            f"The model '{requested}' does not exist. This server serves {names}.",
            param="model",
        )
    ctx = context.current()
    if ctx is not None:
        ctx.adapter, ctx.model = adapter, requested
    return requested


def selected_adapter() -> str | None:
    """The adapter the current request selected, or None for the base model."""
    ctx = context.current()
    return ctx.adapter if ctx is not None else None


def _check_admin(settings: Settings) -> None:
    """Runtime updates must be on (else the endpoints do not exist) and the caller an admin."""
    if not settings.enable_lora_runtime_updates:
        raise NotFoundError("Runtime LoRA updates are off (enable_lora_runtime_updates).")
    ctx = context.current()
    if ctx is not None and not ctx.admin:
        raise PermissionDeniedError("Only admin keys may load or unload adapters.")


async def load_adapter(name: str, path: str, engine: Engine, settings: Settings) -> None:
    _check_admin(settings)
    if name == settings.model_name or name == settings.embedding_model_name:
        raise InvalidRequestError(f"'{name}' is a served model's name.", param="lora_name")
    await engine.load_adapter(name, path)


async def unload_adapter(name: str, engine: Engine, settings: Settings) -> None:
    _check_admin(settings)
    await engine.unload_adapter(name)


def model_cards(settings: Settings, engine: Engine | None, created: int) -> list[ModelCard]:
    """`/v1/models`: the base model, each adapter (`parent` = the base), the embedding model."""
    max_len = engine.max_model_len if engine is not None else settings.max_model_len
    base = settings.model_name
    cards = [ModelCard(id=base, created=created, max_model_len=max_len, root=settings.model)]
    for name in engine.adapters() if engine is not None else []:
        cards.append(
            ModelCard(id=name, created=created, max_model_len=max_len, root=name, parent=base)
        )
    return cards
