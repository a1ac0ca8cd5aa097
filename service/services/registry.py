"""The served-model registry: the base model, its LoRA adapters, and the embedding model.

A request's `model` names one of them; any other name is a 404 naming `model`. Naming an
adapter selects it for the request's engine work: `select_model` says which, and the service
puts it on its engine requests (`services/core/generation.py`'s `Dispatch`). Loading and
unloading adapters at runtime is for admin callers only.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.caller import Caller
from service.config import Settings
from service.engine.base import EmbeddingEngine, Engine
from service.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
)
from service.schemas.common import ModelCard
from service.telemetry import context


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The served model a request named, and the adapter that means (None: the base model)."""

    name: str
    adapter: str | None = None


def select_model(requested: str, settings: Settings, engine: Engine) -> ModelChoice:
    """`requested` when it is the base model or a loaded adapter; else a 404 naming `model`."""
    if requested == settings.model_name:
        choice = ModelChoice(requested)
    elif requested in engine.adapters():
        choice = ModelChoice(requested, adapter=requested)
    else:
        names = ", ".join(f"'{name}'" for name in [settings.model_name, *engine.adapters()])
        raise ModelNotFoundError(
            f"The model '{requested}' does not exist. This server serves {names}.",
            param="model",
        )
    context.label_model(requested)
    return choice


def select_embedding_model(requested: str, settings: Settings) -> str:
    """The embedding model's name, when `requested` is it; else a 404 naming `model`."""
    name = settings.embedding_model_name
    if name is None or requested != name:
        serves = f"'{name}'" if name is not None else "no embedding model"
        raise ModelNotFoundError(
            f"The embedding model '{requested}' does not exist. This server serves {serves}.",
            param="model",
        )
    context.label_model(name)
    return name


def _check_admin(settings: Settings, caller: Caller) -> None:
    """Runtime updates must be on (else the endpoints do not exist) and the caller an admin."""
    if not settings.enable_lora_runtime_updates:
        raise NotFoundError("Runtime LoRA updates are off (enable_lora_runtime_updates).")
    if not caller.admin:
        raise PermissionDeniedError("Only admin keys may load or unload adapters.")


async def load_adapter(
    name: str, path: str, engine: Engine, settings: Settings, caller: Caller
) -> None:
    _check_admin(settings, caller)
    if name == settings.model_name or name == settings.embedding_model_name:
        raise InvalidRequestError(f"'{name}' is a served model's name.", param="lora_name")
    await engine.load_adapter(name, path)


async def unload_adapter(name: str, engine: Engine, settings: Settings, caller: Caller) -> None:
    _check_admin(settings, caller)
    await engine.unload_adapter(name)


def model_cards(
    settings: Settings,
    engine: Engine | None,
    embedding_engine: EmbeddingEngine | None,
    *,
    serves_embeddings: bool,
    created: int,
) -> list[ModelCard]:
    """`/v1/models`: the base model, each adapter (`parent` = the base), the embedding model
    (one card a name: none of its own when it is the base model too)."""
    max_len = engine.max_model_len if engine is not None else settings.max_model_len
    base = settings.model_name
    cards = [ModelCard(id=base, created=created, max_model_len=max_len, root=settings.model)]
    for name in engine.adapters() if engine is not None else []:
        cards.append(
            ModelCard(id=name, created=created, max_model_len=max_len, root=name, parent=base)
        )
    embedding = settings.embedding_model_name
    if serves_embeddings and embedding is not None and embedding != base:
        embedding_len = embedding_engine.max_model_len if embedding_engine is not None else None
        cards.append(ModelCard(id=embedding, created=created, max_model_len=embedding_len))
    return cards
