"""What one benchmark run does: the two servers, the workload's shape, the SLO; and its CLI."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from loadtests.bench.tiny import TINY_MODEL_NAME
from loadtests.workload import PROMPTS_FILE

# Both servers get the same engine settings (`EngineProfile`), rendered as each one's flags into
# {vllm_engine_args} and {gateway_engine_args}.
# The gateway runs without its embedding engine, which vLLM's server does not start either, and
# without a queue-wait bound: vLLM's server queues every request however long the wait, so with
# the gateway's default (30 s) a closed loop of 64 on 2 CPU cores, whose TTFT p50 is about 20 s,
# got some requests refused with 503 `overloaded` (by design) and the two served different work.
VLLM_SERVER = (
    "{python} -m vllm.entrypoints.openai.api_server --model {model_dir} "
    "--served-model-name {model_name} {vllm_engine_args} --host 127.0.0.1 --port {port}"
)
GATEWAY = (
    "{python} -m service --model {model_dir} --served-model-name {model_name} "
    "{gateway_engine_args} --embedding-model none --max-queue-wait-seconds 3600 "
    "--host 127.0.0.1 --port {port}"
)
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


@dataclass(frozen=True, slots=True)
class EngineProfile:
    """The engine settings of both servers, written once. The default is the project's test
    profile on CPU: float32, eager, 2048 context, 8 sequences a step, 1 GiB of CPU KV cache
    (the same bytes in both: whole GiB through vLLM's VLLM_CPU_KVCACHE_SPACE, fractions through
    its --kv-cache-memory-bytes, which the variable would override)."""

    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    enforce_eager: bool = True  # False: CUDA graphs (and torch.compile) on GPU
    max_model_len: int = 2048
    max_num_seqs: int = 8
    gpu_memory_utilization: float | None = None  # None: each server's default
    cpu_kvcache_gib: float = 1.0  # CPU engines only

    def vllm_args(self) -> str:
        """Flags of `python -m vllm.entrypoints.openai.api_server`."""
        flags = [
            f"--dtype {self.dtype}",
            f"--max-model-len {self.max_model_len}",
            f"--max-num-seqs {self.max_num_seqs}",
        ]
        if self.enforce_eager:
            flags.append("--enforce-eager")
        if self.gpu_memory_utilization is not None:
            flags.append(f"--gpu-memory-utilization {self.gpu_memory_utilization}")
        if not self._whole_gib:
            flags.append(f"--kv-cache-memory-bytes {int(self.cpu_kvcache_gib * 2**30)}")
        return " ".join(flags)

    @property
    def _whole_gib(self) -> bool:
        return float(self.cpu_kvcache_gib).is_integer()

    def gateway_args(self) -> str:
        """The same settings as `python -m service` flags."""
        flags = [
            f"--dtype {self.dtype}",
            f"--max-model-len {self.max_model_len}",
            f"--max-num-seqs {self.max_num_seqs}",
            f"--enforce-eager {str(self.enforce_eager).lower()}",
            f"--cpu-kvcache-space {self.cpu_kvcache_gib:g}",
        ]
        if self.gpu_memory_utilization is not None:
            flags.append(f"--gpu-memory-utilization {self.gpu_memory_utilization}")
        return " ".join(flags)

    def environment(self) -> dict[str, str]:
        """What vLLM's own server reads from the environment (the gateway takes a flag); it
        takes whole GiB only, and a GPU engine ignores it."""
        if not self._whole_gib:
            return {}
        return {"VLLM_CPU_KVCACHE_SPACE": str(int(self.cpu_kvcache_gib))}

    def placeholders(self) -> dict[str, str]:
        return {"vllm_engine_args": self.vllm_args(), "gateway_engine_args": self.gateway_args()}


@dataclass(frozen=True, slots=True)
class ServerSpec:
    label: Literal["A", "B"]
    name: str
    # a template: {python} {port} {model_dir} {model_name} {vllm_engine_args} {gateway_engine_args}
    command: str
    ready_path: str


@dataclass(frozen=True, slots=True)
class BenchConfig:
    server_a: ServerSpec
    server_b: ServerSpec
    model_name: str = "smollm2-135m-instruct"
    model_dir: str | None = None  # None: the gateway's prepared default model
    engine: EngineProfile = field(default_factory=EngineProfile)
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
    tiny_model: bool = False  # both servers on the tiny random-weight model (tiny.py)

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

# --tiny-model: both servers on a tiny random-weight model (tiny.py), so the API process and not
# the engine is the bottleneck, as with a small model on a GPU. Issue 24's first run of it: one
# closed-loop level of 64 streams, 256 requests of 128 fixed tokens, no Poisson sweep; both
# engines batch up to 128 sequences (vLLM's CPU default for its server, so all 64 streams share
# every step) with 4 GiB of KV cache each.
TINY = {
    "concurrency": (64,),
    "requests_per_user": 4,
    "output_len": 128,
    "rates": (),
    "model_name": TINY_MODEL_NAME,
}
TINY_ENGINE = {"max_num_seqs": 128, "cpu_kvcache_gib": 4}


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
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="lighter levels (a few minutes)")
    mode.add_argument(
        "--tiny-model",
        action="store_true",
        help="both servers on a tiny random-weight model built from the default model (2 layers, "
        "width 128), so the API process is the bottleneck: c=64, 256 requests of 128 tokens, "
        "128 sequences a step, 4 GiB KV; results in <timestamp>-tiny/",
    )
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
    p.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument(
        "--eager",
        dest="enforce_eager",
        action=argparse.BooleanOptionalAction,
        help="eager mode in both engines (default on; --no-eager: CUDA graphs on GPU)",
    )
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--max-num-seqs", type=int)
    p.add_argument("--gpu-memory-utilization", type=float, help="each server's GPU share")
    p.add_argument(
        "--cpu-kvcache-gib",
        type=float,
        help="each CPU engine's KV cache in GiB, the same bytes in both (default 1; fractions "
        "reach vLLM's server as --kv-cache-memory-bytes, so CPU only)",
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
    if args["tiny_model"] and args["model_dir"]:
        parser().error("--tiny-model builds its own model folder: drop --model-dir")
    preset, engine_preset = _presets(quick=args["quick"], tiny=args["tiny_model"])
    engine = {
        **engine_preset,
        **{
            name: value
            for name in EngineProfile.__dataclass_fields__
            if (value := args.pop(name)) is not None
        },
    }
    values = {**preset, **{k: v for k, v in args.items() if v is not None}}
    config = BenchConfig(
        server_a=server_a, server_b=server_b, engine=EngineProfile(**engine), **values
    )
    problems = [
        "--pairs must be at least 1" if config.pairs < 1 else "",
        "give at least one level" if not config.concurrency and not config.rates else "",
        "levels must be positive" if any(v <= 0 for v in config.concurrency + config.rates) else "",
    ]
    if any(problems):
        parser().error("; ".join(p for p in problems if p))
    return config


def _presets(*, quick: bool, tiny: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A mode's workload and engine settings, under whatever flags are given explicitly."""
    if tiny:
        return {**TINY, "out_dir": RESULTS_DIR / f"{_timestamp()}-tiny"}, TINY_ENGINE
    return (QUICK if quick else {}), {}


def python() -> str:
    return sys.executable
