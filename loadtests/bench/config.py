"""What one benchmark run does: the two servers, the workload's shape, the SLO; and its CLI."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from loadtests.workload import PROMPTS_FILE

# The same engine settings on both sides (the project's test profile): float32, eager, 2048
# context, 8 sequences a step, 1 GiB of CPU KV cache (set through the environment for vLLM);
# the gateway without its embedding engine, which vLLM's server does not start either.
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
VLLM_SERVER = (
    "{python} -m vllm.entrypoints.openai.api_server --model {model_dir} "
    "--served-model-name {model_name} --dtype float32 --enforce-eager --max-model-len 2048 "
    "--max-num-seqs 8 --host 127.0.0.1 --port {port}"
)
GATEWAY = (
    "{python} -m service --model {model_dir} --served-model-name {model_name} "
    "--max-model-len 2048 --max-num-seqs 8 --cpu-kvcache-space 1 --enforce-eager true "
    "--embedding-model none --host 127.0.0.1 --port {port}"
)
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


@dataclass(frozen=True, slots=True)
class ServerSpec:
    label: Literal["A", "B"]
    name: str
    command: str  # a template: {python} {port} {model_dir} {model_name}
    ready_path: str


@dataclass(frozen=True, slots=True)
class BenchConfig:
    server_a: ServerSpec
    server_b: ServerSpec
    model_name: str = "smollm2-135m-instruct"
    model_dir: str | None = None  # None: the gateway's prepared default model
    pairs: int = 3
    concurrency: tuple[int, ...] = (1, 4, 16, 64)
    requests_per_user: int = 4  # closed loop: concurrency x this many requests a level
    min_requests: int = 8
    output_len: int = 64  # fixed output (ignore_eos) in the closed-loop throughput phase
    rates: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # Poisson arrivals, requests/s
    requests_per_rate: int = 24
    natural_max_tokens: int = 128  # cap for natural-length replies in the Poisson phase
    endpoint: Literal["chat", "completions"] = "chat"
    seed: int = 0
    slo_ttft_ms: float = 2000.0
    slo_tpot_ms: float = 150.0
    warmup_requests: int = 2
    request_timeout_s: float = 300.0
    level_timeout_s: float = 900.0
    ready_timeout_s: float = 600.0
    restart_each_run: bool = False
    prompts: Path = PROMPTS_FILE
    out_dir: Path = field(default_factory=lambda: RESULTS_DIR / _timestamp())
    note: str = ""
    quick: bool = False

    @property
    def servers(self) -> tuple[ServerSpec, ServerSpec]:
        return self.server_a, self.server_b


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


# --quick: the same three pairs on a lighter workload, a few minutes on 2 cores.
QUICK = {
    "concurrency": (1, 4, 16),
    "requests_per_user": 2,
    "min_requests": 4,
    "output_len": 32,
    "rates": (1.0, 2.0),
    "requests_per_rate": 10,
    "natural_max_tokens": 96,
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="A/B benchmark: vLLM's own OpenAI server (A) against the gateway (B), "
        "same model, same engine settings, byte-identical seeded requests, on loopback.",
    )
    p.add_argument("--quick", action="store_true", help="lighter levels (a few minutes)")
    p.add_argument("--pairs", type=int, help="A,B pairs to alternate (default 3)")
    p.add_argument("--concurrency", type=_ints, help="closed-loop levels, e.g. 1,4,16,64")
    p.add_argument("--rates", type=_floats, help="Poisson rates in requests/s, e.g. 0.5,1,2")
    p.add_argument("--requests-per-user", type=int)
    p.add_argument("--min-requests", type=int)
    p.add_argument("--requests-per-rate", type=int)
    p.add_argument("--output-len", type=int, help="fixed output tokens (throughput phase)")
    p.add_argument("--natural-max-tokens", type=int, help="cap for natural-length replies")
    p.add_argument("--endpoint", choices=["chat", "completions"])
    p.add_argument("--seed", type=int)
    p.add_argument("--slo-ttft-ms", type=float)
    p.add_argument("--slo-tpot-ms", type=float)
    p.add_argument("--warmup-requests", type=int)
    p.add_argument("--request-timeout", dest="request_timeout_s", type=float)
    p.add_argument("--level-timeout", dest="level_timeout_s", type=float)
    p.add_argument("--ready-timeout", dest="ready_timeout_s", type=float)
    p.add_argument(
        "--restart-each-run",
        action="store_true",
        default=None,
        help="start a fresh server for every run instead of keeping A and B up (idle when not "
        "measured)",
    )
    p.add_argument("--model-name", help="served model name used by both servers")
    p.add_argument("--model-dir", help="model folder (default: the gateway's prepared model)")
    p.add_argument("--prompts", type=Path, help="JSON-lines prompt set")
    p.add_argument("--out", dest="out_dir", type=Path, help="results folder")
    p.add_argument("--note", help="conditions to record, e.g. 'shared, busy machine'")
    for label, spec in (("a", "vLLM's OpenAI server"), ("b", "the gateway")):
        p.add_argument(f"--server-{label}-cmd", help=f"command template for {spec}")
        p.add_argument(f"--server-{label}-ready", help="readiness path (200 when ready)")
        p.add_argument(f"--server-{label}-name", help="label in the report")
    return p


def from_args(argv: list[str] | None = None) -> BenchConfig:
    args = vars(parser().parse_args(argv))
    server_a = ServerSpec(
        "A",
        args.pop("server_a_name") or "vllm-openai-server",
        args.pop("server_a_cmd") or VLLM_SERVER,
        args.pop("server_a_ready") or "/health",
    )
    server_b = ServerSpec(
        "B",
        args.pop("server_b_name") or "gateway",
        args.pop("server_b_cmd") or GATEWAY,
        args.pop("server_b_ready") or "/ready",
    )
    values = {
        **(QUICK if args["quick"] else {}),
        **{k: v for k, v in args.items() if v is not None},
    }
    config = BenchConfig(server_a=server_a, server_b=server_b, **values)
    problems = [
        "--pairs must be at least 1" if config.pairs < 1 else "",
        "give at least one level" if not config.concurrency and not config.rates else "",
        "levels must be positive" if any(v <= 0 for v in config.concurrency + config.rates) else "",
    ]
    if any(problems):
        parser().error("; ".join(p for p in problems if p))
    return config


def python() -> str:
    return sys.executable
