"""What a GPU run does on each platform: the engine settings of both servers, the levels, the
tests, and the time each step may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loadtests.bench.config import EngineProfile

Platform = Literal["cuda", "cpu"]


@dataclass(frozen=True, slots=True)
class RunProfile:
    name: str
    platform: Platform
    engine: EngineProfile  # the same for vLLM's server (A) and the gateway (B)
    concurrency: tuple[int, ...]
    pairs: int
    requests_per_user: int
    min_requests: int
    output_len: int
    warmup_requests: int
    ready_timeout_s: float  # each server's start, CUDA graphs included
    level_timeout_s: float
    tests: tuple[str, ...]  # pytest arguments of the test step


CUDA = RunProfile(
    name="cuda",
    platform="cuda",
    # bf16 and CUDA graphs, as `vllm serve` runs by default. Both servers stay resident on one
    # GPU, so each gets 40 % of it (vLLM checks at start that its share is free). 256 sequences
    # a step, so that c=256 is one batch on both (their defaults differ by version and context).
    engine=EngineProfile(
        dtype="bfloat16",
        enforce_eager=False,
        max_model_len=2048,
        max_num_seqs=256,
        gpu_memory_utilization=0.4,
    ),
    concurrency=(1, 16, 64, 256),
    pairs=2,
    requests_per_user=2,
    min_requests=16,
    output_len=64,
    warmup_requests=4,
    ready_timeout_s=300.0,
    level_timeout_s=120.0,
    # Every real-engine test: the shared engine (the test profile, eager) and the lifecycle
    # tests' own server processes.
    tests=("-m", "engine", "tests/integration"),
)

# CI's quick form: the same course on the CPU engine (float32, eager, the test profile), with
# levels just large enough to exercise every step, and a test step that needs no third engine
# (CI runs the integration tests themselves anyway).
DRY_RUN = RunProfile(
    name="cpu-dry-run",
    platform="cpu",
    engine=EngineProfile(),
    concurrency=(1, 2),
    pairs=1,
    requests_per_user=1,
    min_requests=2,
    output_len=8,
    warmup_requests=1,
    ready_timeout_s=240.0,
    level_timeout_s=120.0,
    tests=("tests/unit/test_config.py",),
)
