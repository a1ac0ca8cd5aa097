"""The machine and what ran on it: the benchmark's machine description plus the GPU run's own
facts (the platform, the environment it set, flashinfer), and which vLLM model runner each
server chose, read from its log."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from loadtests.bench import report
from loadtests.gpu.profiles import Platform, RunProfile

# Variables that change what the engines do, recorded when set.
RECORDED_ENV = (
    "VLLM_USE_FLASHINFER_SAMPLER",
    "VLLM_USE_V2_MODEL_RUNNER",
    "CUDA_VISIBLE_DEVICES",
    "GATEWAY_NO_REPEAT_NGRAM",
    "HF_HUB_OFFLINE",
    "PYTHONPATH",
)
# The gateway logs its runner; vLLM's server says "Using V2 Model Runner" on GPU (0.26, 0.32),
# or why it fell back to V1. On CPU it names neither: its workers log from the CPU model runner
# (`cpu_model_runner.py`), a V1 runner (the dry run reads that).
_RUNNER_LINES = (
    (re.compile(r"vLLM model runner: (V1|V2)"), ""),
    (re.compile(r"Using V2 Model Runner"), "V2"),
    (re.compile(r"using the V1 model runner instead"), "V1"),
    (re.compile(r"\[cpu_model_runner\.py:\d+\]"), "V1"),
)
# What each step imports, by module name (the offline machine may lack some: carry-test.txt).
NEEDED = {
    "benchmark": ("vllm", "httpx", "matplotlib", "fastapi", "pydantic_settings"),
    "tests": ("pytest", "pytest_asyncio", "pytest_timeout", "asgi_lifespan", "psutil", "openai"),
}
NEEDED_FOR_ALL_INTEGRATION_TESTS = ("schemathesis",)


def runner_in_log(text: str) -> str | None:
    """The model runner a server's log reports ("V1", "V2"), or None if it says nothing."""
    for pattern, runner in _RUNNER_LINES:
        found = pattern.search(text)
        if found:
            return runner or found.group(1)
    return None


def runners(out_dir: Path) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for label in ("A", "B"):
        log = out_dir / f"server-{label}-resident.log"
        found[label] = runner_in_log(log.read_text(errors="replace")) if log.is_file() else None
    return found


def flashinfer_version() -> str | None:
    try:
        return metadata.version("flashinfer-python")
    except metadata.PackageNotFoundError:
        return "present" if importlib.util.find_spec("flashinfer") is not None else None


def prepare_environment(platform: Platform) -> dict[str, str]:
    """Set what the engines need here (both servers and the tests inherit it); return it.

    vLLM 0.26 on CUDA imports flashinfer for its top-k/top-p sampler unless told not to, and
    its engine core dies at start without it (the offline wheel set carries none).
    """
    chosen: dict[str, str] = {}
    if (
        platform == "cuda"
        and "VLLM_USE_FLASHINFER_SAMPLER" not in os.environ
        and flashinfer_version() is None
    ):
        chosen["VLLM_USE_FLASHINFER_SAMPLER"] = "0"
    os.environ.update(chosen)
    return chosen


def missing_modules(profile: RunProfile) -> dict[str, list[str]]:
    """Modules a step needs that cannot be imported here, by step."""
    needed = dict(NEEDED)
    if "tests/integration" in profile.tests:
        needed["tests"] = (*needed["tests"], *NEEDED_FOR_ALL_INTEGRATION_TESTS)
    gaps = {
        step: [name for name in names if importlib.util.find_spec(name) is None]
        for step, names in needed.items()
    }
    return {step: names for step, names in gaps.items() if names}


def machine(profile: RunProfile) -> dict[str, Any]:
    return {
        **report.machine(dtype=profile.engine.dtype),
        "platform": profile.platform,
        "flashinfer": flashinfer_version(),
        "transformers": _version("transformers"),
        "python_executable": sys.executable,
        "environment": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
