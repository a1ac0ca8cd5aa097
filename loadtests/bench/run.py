"""The benchmark's course: start A then B, alternate measured runs A, B, A, B, ..., report."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtests.bench import engine_metrics
from loadtests.bench import report as out
from loadtests.bench.config import BenchConfig, ServerSpec
from loadtests.bench.driver import (
    Level,
    build_levels,
    make_client,
    run_level,
    warm_up,
    warmup_bodies,
)
from loadtests.bench.servers import ManagedServer, render
from loadtests.bench.stats import compare, summarize, verdict
from loadtests.bench.tiny import TinyShape, ensure_tiny_model

logger = logging.getLogger(__name__)


def resolve_model_dir(config: BenchConfig) -> str:
    """The folder both servers load; only needed when a command template names {model_dir}.
    In the tiny mode, the tiny model built from the prepared default model (once, then reused)."""
    if not any("{model_dir}" in s.command for s in config.servers):
        return config.model_dir or ""
    if config.model_dir:
        return config.model_dir
    from service.config import Settings
    from service.weights import resolve_model

    settings = Settings()
    folder = resolve_model(settings)
    if not Path(folder, "config.json").is_file():
        raise SystemExit(
            f"no prepared model at {folder}: run `python -m service.weights prepare` or pass "
            "--model-dir"
        )
    if config.tiny_model:
        tiny = ensure_tiny_model(Path(folder), settings.download_dir)
        logger.info("tiny model: %s", tiny)
        return str(tiny)
    return folder


def workload_digest(levels: list[Level]) -> str:
    digest = hashlib.sha256()
    for level in levels:
        digest.update(level.key.encode())
        for body in level.bodies:
            digest.update(body)
        digest.update(repr(level.arrivals).encode())
    return digest.hexdigest()


def _server(spec: ServerSpec, config: BenchConfig, model_dir: str, tag: str) -> ManagedServer:
    return ManagedServer(
        spec,
        model_dir=model_dir,
        model_name=config.model_name,
        log_path=config.out_dir / f"server-{spec.label}-{tag}.log",
        ready_timeout_s=config.ready_timeout_s,
        engine=config.engine,
    )


def cpu_figures(
    before: tuple[float, float] | None, after: tuple[float, float] | None, tokens: int
) -> dict[str, float | None]:
    """CPU the server spent on a level: its API process, and its engine (the rest of its group)."""
    if before is None or after is None:
        return {k: None for k in ("api_cpu_s", "engine_cpu_s", "api_cpu_ms_per_token")}
    api, engine = after[0] - before[0], after[1] - before[1]
    return {
        "api_cpu_s": round(api, 3),
        "engine_cpu_s": round(engine, 3),
        "api_cpu_ms_per_token": round(api * 1000 / tokens, 4) if tokens else None,
        "engine_cpu_ms_per_token": round(engine * 1000 / tokens, 4) if tokens else None,
    }


def memory_figures(parts: tuple[float, float] | None) -> dict[str, float | None]:
    """The server's summed PSS in GiB: its API process, the rest of its group, and the total."""
    if parts is None:
        return {"api_gib": None, "engine_gib": None, "total_gib": None}
    api, engine = parts
    return {
        "api_gib": round(api / 2**30, 3),
        "engine_gib": round(engine / 2**30, 3),
        "total_gib": round((api + engine) / 2**30, 3),
    }


async def preemptions(client: httpx.AsyncClient, base_url: str) -> float | None:
    """vLLM's count of preempted requests, from the server's /metrics (both servers expose
    vLLM's metrics there); None when it is not there."""
    try:
        text = (await client.get(base_url + "/metrics")).text
    except httpx.HTTPError:
        return None
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "vllm:num_preemptions_total"
    ]
    return sum(found) if found else None


async def measure(
    server: ManagedServer, config: BenchConfig, levels: list[Level], order: int
) -> dict[str, Any]:
    """One run: warm-up, then every level in turn against one server."""
    path = "/v1/chat/completions" if config.endpoint == "chat" else "/v1/completions"
    url = server.base_url + path
    run: dict[str, Any] = {
        "order": order,
        "pair": order // 2,
        "server": server.spec.label,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": out.loadavg(),
        "server_startup_s": server.startup_s,
        "levels": {},
    }
    async with make_client(config.request_timeout_s) as client:
        await warm_up(client, url, warmup_bodies(config))
        run["memory_after_warmup"] = memory_figures(server.memory_bytes())
        for level in levels:
            histograms_before = await engine_metrics.scrape(client, server.base_url)
            cpu_before = server.cpu_seconds()
            preempted_before = await preemptions(client, server.base_url)
            result = await run_level(client, url, level, timeout_s=config.level_timeout_s)
            figures = summarize(
                result, slo_ttft_ms=config.slo_ttft_ms, slo_tpot_ms=config.slo_tpot_ms
            )
            cpu_after = server.cpu_seconds()
            figures.update(cpu_figures(cpu_before, cpu_after, figures["output_tokens"]))
            figures.update(
                engine_metrics.level_figures(
                    histograms_before,
                    await engine_metrics.scrape(client, server.base_url),
                    client_ttft_mean_ms=figures["ttft_mean_ms"],
                    output_tokens=figures["output_tokens"],
                )
            )
            preempted_after = await preemptions(client, server.base_url)
            figures["preemptions"] = (
                None
                if preempted_before is None or preempted_after is None
                else preempted_after - preempted_before
            )
            run["levels"][level.key] = figures
            logger.info(
                "run %d %s %-12s %4d ok %2d err  %7.1f tok/s  TTFT p50 %s ms  ITL p50 %s ms",
                order,
                server.spec.label,
                level.key,
                figures["completed"],
                figures["errors"],
                figures["output_throughput"],
                figures["ttft_p50_ms"],
                figures["itl_p50_ms"],
            )
    run["memory_after_run"] = memory_figures(server.memory_bytes())
    run["loadavg_end"] = out.loadavg()
    return run


def _base_report(config: BenchConfig, levels: list[Level], model_dir: str) -> dict[str, Any]:
    settings = asdict(config)
    for key in ("server_a", "server_b"):
        settings.pop(key)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
    return {
        "schema": 1,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": out.machine(dtype=config.engine.dtype),
        "conditions": {
            "note": config.note,
            "layout": "restart-each-run" if config.restart_each_run else "resident",
            "loadavg_start": out.loadavg(),
        },
        "config": settings,
        "tiny_model": (
            {**asdict(TinyShape()), "num_attention_heads": TinyShape().num_attention_heads}
            if config.tiny_model
            else None
        ),
        "servers": {
            s.label: {
                "name": s.name,
                "command": s.command,
                "command_line": render(
                    s.command,
                    config.engine,
                    model_dir=model_dir,
                    model_name=config.model_name,
                    port="{port}",
                ),
                "ready_path": s.ready_path,
                "model_dir": model_dir,
            }
            for s in config.servers
        },
        "workload": {
            "sha256": workload_digest(levels),
            "levels": [
                {
                    "key": lv.key,
                    "phase": lv.phase,
                    "value": lv.value,
                    "requests": len(lv.bodies),
                    "max_tokens": config.output_len
                    if lv.phase == "closed"
                    else config.natural_max_tokens,
                    "ignore_eos": lv.phase == "closed",
                }
                for lv in levels
            ],
        },
        "runs": [],
    }


async def benchmark(config: BenchConfig) -> dict[str, Any]:
    """Run the whole benchmark; servers are stopped on every way out (error, Ctrl-C, SIGTERM)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    model_dir = resolve_model_dir(config)
    levels = build_levels(config)
    report = _base_report(config, levels, model_dir)
    report_path = config.out_dir / "report.json"
    try:
        async with AsyncExitStack() as servers:
            resident: dict[str, ManagedServer] = {}
            if not config.restart_each_run:
                # One after the other: B starts only once A is ready.
                for spec in config.servers:
                    started = _server(spec, config, model_dir, "resident")
                    resident[spec.label] = await servers.enter_async_context(started)
            for order in range(2 * config.pairs):
                spec = config.servers[order % 2]
                async with AsyncExitStack() as this_run:
                    server = resident.get(spec.label)
                    if server is None:
                        fresh = _server(spec, config, model_dir, f"run{order}")
                        server = await this_run.enter_async_context(fresh)
                    report["runs"].append(await measure(server, config, levels, order))
                out.write_json(report_path, report)  # partial results survive a later failure
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    keys = [lv.key for lv in levels]
    report["comparison"] = compare(report["runs"], keys)
    report["verdict"] = verdict(
        report["comparison"], closed_keys=[lv.key for lv in levels if lv.phase == "closed"]
    )
    report["conditions"]["loadavg_end"] = out.loadavg()
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["duration_s"] = round(time.monotonic() - began, 1)
    out.write_json(report_path, report)
    (config.out_dir / "summary.md").write_text(
        out.summary_table(report) + "\n" + out.memory_table(report)
    )
    out.chart(config.out_dir / "chart.png", report)
    return report
