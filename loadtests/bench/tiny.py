"""The model of `--tiny-model`: the default model's tokenizer and config cut down to 2 layers of
width 128, with random weights from a fixed seed, float32.

A decode step of this model costs the CPU engine about as little as a small model's step costs
a GPU, so the API process (HTTP, SSE, detokenizing, the engine client), not the engine, bounds
throughput: the case the main benchmark on the 135M model cannot show on 2 CPU cores. The
weights are noise, so the replies are too; the benchmark's closed loop fixes their length
(`ignore_eos`), and greedy decoding makes them the same on both servers.

The folder is built once (a second or two) under the model cache and reused; its name carries a
fingerprint of the recipe and of the source config, so a changed recipe builds a new one. It is
written by transformers' `save_pretrained` into a temporary folder and renamed into place, so an
interrupted build leaves nothing half-made behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Both servers serve the folder under this name in the tiny mode.
TINY_MODEL_NAME = "smollm2-tiny-random"


@dataclass(frozen=True, slots=True)
class TinyShape:
    """What the tiny model keeps smaller than its source; everything else is the source's."""

    num_hidden_layers: int = 2
    hidden_size: int = 128
    # vLLM's CPU attention kernel refuses head size 16 (width 128 over the source's 9 heads, or
    # 8), so the width is 2 heads of 64, the source's own head size.
    head_dim: int = 64
    intermediate_size: int = 512  # 4 x hidden, the usual MLP ratio (the source has 2.67 x)
    seed: int = 0

    @property
    def num_attention_heads(self) -> int:
        return self.hidden_size // self.head_dim

    def config_fields(self) -> dict[str, Any]:
        """The source config's fields this shape replaces."""
        return {
            "num_hidden_layers": self.num_hidden_layers,
            "hidden_size": self.hidden_size,
            "head_dim": self.head_dim,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_attention_heads,  # no grouped-query sharing
            "intermediate_size": self.intermediate_size,
        }


def tiny_model_dir(source: Path, cache_dir: Path, shape: TinyShape | None = None) -> Path:
    """Where the tiny model of `source` (a model folder) lives under `cache_dir`."""
    shape = shape or TinyShape()
    recipe = json.dumps(
        {"shape": asdict(shape), "source_config": (source / "config.json").read_text()},
        sort_keys=True,
    )
    fingerprint = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    return cache_dir / f"bench-tiny-{shape.num_hidden_layers}x{shape.hidden_size}-{fingerprint}"


def is_built(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def ensure_tiny_model(source: Path, cache_dir: Path, shape: TinyShape | None = None) -> Path:
    """The tiny model's folder, built from `source` when it is not there yet."""
    shape = shape or TinyShape()
    folder = tiny_model_dir(source, cache_dir, shape)
    if is_built(folder):
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
    try:
        build(source, staging, shape)
        staging.chmod(0o755)  # mkdtemp's 0700 would stay on the renamed folder
        try:
            staging.rename(folder)
        except OSError:
            if not is_built(folder):  # not another build that finished first: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build(source: Path, target: Path, shape: TinyShape) -> None:
    """Write the tiny model of `source` into the folder `target` (transformers, no hub)."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        set_seed,
    )

    config = AutoConfig.from_pretrained(source, local_files_only=True)
    for name, value in shape.config_fields().items():
        setattr(config, name, value)
    config.dtype = "float32"
    set_seed(shape.seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(source, local_files_only=True)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(target)
