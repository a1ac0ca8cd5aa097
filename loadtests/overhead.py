"""The gateway's own cost per request, in process: the whole ASGI app (every middleware, the
route, the guard and admission, the store's background sync) on the fake engine, driven by raw
ASGI calls so that no HTTP client's time is counted.

    python -m loadtests.overhead                      # this checkout
    python -m loadtests.overhead --requests 4000 --rounds 7
    python -m loadtests.overhead --parts              # the request path's pieces, one by one

Runs the same requests on the configurations below, rounds interleaved, and prints each one's
median time per request over the rounds (and their spread). To compare two checkouts, run it in
each on the same machine, one after the other (`PYTHONPATH=<checkout>`): it uses only what both
have (the key file, settings, the fake engine). CPU time per request is printed beside
wall-clock time; it moves less when other work shares the machine.

`--parts` times pieces of the request path alone (the best of several repeats of many calls, so
other work on the machine barely shows): admission's acquire and release with one tenant and
with two, the key lookup for 1, 100 and 1000 keys, and the tenancy middleware (a budget check
and the usage charge) around an app that does nothing. A piece this checkout lacks is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine

BODY = json.dumps(
    {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
).encode()


def _app(folder: Path, *, keys: int) -> FastAPI:
    settings: dict[str, Any] = {
        "model": "fake",
        "served_model_name": "fake",
        "data_dir": folder / f"data-{keys}",
        "embedding_model": "none",
    }
    if keys:
        path = folder / f"keys-{keys}.toml"
        path.write_text(
            "".join(f'[[keys]]\nname = "k{i}"\nkey = "sk-bench-{i}"\n' for i in range(keys))
        )
        settings["api_key_file"] = path
    return create_app(Settings(**settings), engine_factory=FakeEngine)


def _scope(keys: int) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    if keys:
        headers.append((b"authorization", b"Bearer sk-bench-0"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _one(app: Any, scope: dict[str, Any]) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # no disconnect: the request ends on its own
        sent = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**scope, "state": {}}, receive, send)
    return status


async def _round(app: Any, scope: dict[str, Any], requests: int) -> tuple[float, float]:
    """(wall, CPU) seconds per request."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        status = await _one(app, scope)
        if status != 200:
            raise RuntimeError(f"status {status}")
    return (time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests


async def run(requests: int, rounds: int, key_counts: list[int]) -> dict[str, dict[str, float]]:
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        apps = {keys: _app(Path(folder), keys=keys) for keys in key_counts}
        managers = {keys: LifespanManager(app, startup_timeout=120) for keys, app in apps.items()}
        for manager in managers.values():
            await manager.__aenter__()
        try:
            for keys, app in apps.items():
                await app.state.gateway.engine_state.wait_started()
                await _round(managers[keys].app, _scope(keys), 200)  # warm-up
            for _ in range(rounds):
                for keys in key_counts:
                    name = f"{keys} keys" if keys else "authentication off"
                    timed = await _round(managers[keys].app, _scope(keys), requests)
                    results.setdefault(name, []).append(timed)
        finally:
            for manager in managers.values():
                await manager.__aexit__(None, None, None)
    return {
        name: {
            "wall_us": statistics.median(w for w, _ in runs) * 1e6,
            "wall_min_us": min(w for w, _ in runs) * 1e6,
            "wall_max_us": max(w for w, _ in runs) * 1e6,
            "cpu_us": statistics.median(c for _, c in runs) * 1e6,
        }
        for name, runs in results.items()
    }


def _best_us(call: Callable[[], Any], number: int = 20_000, repeat: int = 7) -> float:
    """Microseconds a call, the best of `repeat` runs of `number` calls."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def _async_best_us(make: Callable[[], Any], number: int = 20_000, repeat: int = 7) -> float:
    loop = asyncio.new_event_loop()
    try:

        async def many() -> None:
            for _ in range(number):
                await make()

        best = min(timeit.repeat(lambda: loop.run_until_complete(many()), number=1, repeat=repeat))
        return best / number * 1e6
    finally:
        loop.close()


def _admission_us(tenants: int) -> float | None:
    import inspect

    from service.runtime.admission import Admission

    admission = Admission(max_inflight=16, max_queued=64)
    fair = "tenant" in inspect.signature(admission.acquire).parameters
    if tenants > 1 and not fair:
        return None  # no tenants before fair share
    names = [f"key:{i}" for i in range(tenants)]
    turn = 0

    async def once() -> None:
        nonlocal turn
        turn += 1
        if fair:
            permit = await admission.acquire(1, tenant=names[turn % tenants])
        else:
            permit = await admission.acquire(1)
        permit.release()

    return _async_best_us(once)


def _lookup_us(keys: int) -> float:
    from service.http.keys import ApiKey, KeyStore, key_digest

    store = KeyStore([ApiKey(key_digest(f"sk-{i}".encode())) for i in range(keys)])
    return _best_us(lambda: store.find(b"sk-0"), number=2_000 if keys > 100 else 20_000)


def _tenancy_us() -> float | None:
    try:
        from service.http.tenancy import TenancyMiddleware
        from service.services.tenants.meter import UsageMeter
    except ImportError:
        return None
    from service.telemetry import context

    async def nothing(scope: Any, receive: Any, send: Any) -> None:
        ctx = context.current()
        if ctx is not None:
            ctx.engine_requests, ctx.prompt_tokens, ctx.completion_tokens = 1, 10, 20

    meter = UsageMeter(usage=None)  # type: ignore[arg-type]  # never synced here
    middleware = TenancyMiddleware(nothing, meter=meter)
    scope = _scope(0)
    ctx = context.new_context("bench")

    async def through() -> None:
        with context.bound(ctx):
            await middleware(scope, None, None)  # type: ignore[arg-type]

    async def around() -> None:
        with context.bound(ctx):
            await nothing(scope, None, None)

    return _async_best_us(through) - _async_best_us(around)


def parts() -> str:
    rows = [
        ("admission acquire + release, one tenant", _admission_us(1)),
        ("admission acquire + release, tenants alternating", _admission_us(2)),
        ("key lookup, 1 key", _lookup_us(1)),
        ("key lookup, 100 keys", _lookup_us(100)),
        ("key lookup, 1000 keys", _lookup_us(1000)),
        ("tenancy middleware (budget check + usage charge)", _tenancy_us()),
    ]
    lines = ["| piece | µs per request (best of 7) |", "|---|---|"]
    lines += [f"| {name} | {'-' if us is None else f'{us:.2f}'} |" for name, us in rows]
    return "\n".join(lines)


def _table(figures: dict[str, dict[str, float]], load: str) -> str:
    lines = [
        f"load average {load}",
        "| configuration | wall µs/request (median, min-max) | CPU µs/request |",
        "|---|---|---|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| {name} | {f['wall_us']:.0f} ({f['wall_min_us']:.0f}-{f['wall_max_us']:.0f}) "
            f"| {f['cpu_us']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.overhead")
    parser.add_argument("--requests", type=int, default=2000, help="per round and configuration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--keys", type=int, nargs="+", default=[0, 1, 100], help="key-file sizes (0: auth off)"
    )
    parser.add_argument("--parts", action="store_true", help="time the pieces one by one")
    args = parser.parse_args(argv)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.parts:
        out(f"load average {load}\n{parts()}")
        return
    figures = asyncio.run(run(args.requests, args.rounds, args.keys))
    out(_table(figures, load))


if __name__ == "__main__":
    main()
