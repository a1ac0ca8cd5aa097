"""Locust scenarios for the gateway: the OpenAI API (streaming chat, plain completions) and the
task API (generate, summarize, classify in batches, chat).

Headless and bounded, from the repository root (settings in `loadtests/locust.conf`):

    .venv/bin/locust --config loadtests/locust.conf                  # every user class
    .venv/bin/locust --config loadtests/locust.conf -u 4 -t 30s OpenAIChatStreamUser

Besides Locust's own per-endpoint rows, it adds client-side metrics as their own request types:
`TTFT` (time to the first streamed token), `ITL` (a stream's mean inter-token latency) and
`OVERHEAD` (the gateway's `x-gateway-overhead-ms` header, when the server sends one). Every
request's `x-request-id`, overhead and timings go to the `--request-log` CSV.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TextIO

from locust import HttpUser, between, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from loadtests import workload

PROMPTS = workload.load_prompts()
LOG_FIELDS = ["time", "user", "name", "status", "request_id", "overhead_ms", "ttft_ms", "e2e_ms"]
_ids = itertools.count()


class _RequestLog:
    """One CSV row per request; opened when a test starts (Locust runs users as greenlets)."""

    file: TextIO | None = None
    writer: Any = None

    @classmethod
    def open(cls, path: str) -> None:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            cls.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            cls.writer = csv.writer(cls.file)
            cls.writer.writerow(LOG_FIELDS)

    @classmethod
    def row(cls, *values: object) -> None:
        if cls.writer is not None:
            cls.writer.writerow(values)

    @classmethod
    def close(cls) -> None:
        if cls.file is not None:
            cls.file.close()
            cls.file, cls.writer = None, None


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument("--model-name", default="", help="model to request (default: /v1/models)")
    parser.add_argument("--request-log", default="", help="CSV of every request's id and timings")
    parser.add_argument("--workload-seed", type=int, default=0, help="seed of the request mix")


@events.init.add_listener
def _make_report_dirs(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    for path in (getattr(options, "csv_prefix", None), getattr(options, "html_file", None)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)


@events.test_start.add_listener
def _open_log(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    _RequestLog.open(getattr(options, "request_log", "") if options else "")


@events.test_stop.add_listener
def _close_log(**_: Any) -> None:
    _RequestLog.close()


def _metric(kind: str, name: str, milliseconds: float) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=milliseconds,
        response_length=0,
        exception=None,
        context={},
    )


def chat_delta(event: dict[str, Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for c in event.get("choices", []))


def completion_text(event: dict[str, Any]) -> str:
    return "".join(c.get("text") or "" for c in event.get("choices", []))


def task_delta(event: dict[str, Any]) -> str:
    return "".join(r.get("delta") or "" for r in event.get("results", []))


class GatewayUser(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    model: ClassVar[str] = ""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        seed = getattr(options, "workload_seed", 0) if options else 0
        self.rng = random.Random(f"{seed}-{type(self).__name__}-{next(_ids)}")
        if not GatewayUser.model:
            GatewayUser.model = (getattr(options, "model_name", "") if options else "") or (
                self.client.get("/v1/models", name="/v1/models").json()["data"][0]["id"]
            )

    def _headers(self, name: str, response: Any, ttft_ms: float | None, e2e_ms: float) -> None:
        overhead = response.headers.get("x-gateway-overhead-ms")
        if overhead is not None:
            _metric("OVERHEAD", name, float(overhead))
        _RequestLog.row(
            f"{time.time():.3f}",
            type(self).__name__,
            name,
            response.status_code,
            response.headers.get("x-request-id", ""),
            overhead or "",
            "" if ttft_ms is None else f"{ttft_ms:.1f}",
            f"{e2e_ms:.1f}",
        )

    def post_json(self, path: str, body: dict[str, Any]) -> None:
        start = time.perf_counter()
        with self.client.post(path, json=body, name=path, catch_response=True) as response:
            self._headers(path, response, None, (time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    def post_stream(self, path: str, body: dict[str, Any], text_of: Callable[[Any], str]) -> None:
        """Stream one SSE request; Locust's row gets the end-to-end time, TTFT/ITL their own."""
        start = time.perf_counter()
        first: float | None = None
        last = start
        tokens, size, error = 0, 0, ""
        with self.client.post(
            path, json=body, name=path, stream=True, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                self._headers(path, response, None, (time.perf_counter() - start) * 1000)
                return
            for line in response.iter_lines(chunk_size=None):
                size += len(line)
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    error = str(event["error"].get("message"))
                    continue
                if text_of(event):
                    now = time.perf_counter()
                    first, last, tokens = first or now, now, tokens + 1
            end = time.perf_counter()
            # request_meta is a dict Locust reports when the block exits.
            response.request_meta["response_time"] = (end - start) * 1000
            response.request_meta["response_length"] = size
            ttft = None if first is None else (first - start) * 1000
            self._headers(path, response, ttft, (end - start) * 1000)
            if error or first is None:
                response.failure(error or "the stream carried no text")
                return
        _metric("TTFT", path, (first - start) * 1000)
        if tokens > 1:
            _metric("ITL", path, (last - first) * 1000 / (tokens - 1))


class OpenAIChatStreamUser(GatewayUser):
    """Streaming chat completions: the main interactive workload."""

    weight = 4

    @task
    def chat_stream(self) -> None:
        prompt = self.rng.choice(PROMPTS)
        body = workload.chat_body(
            self.model, prompt, max_tokens=workload.output_length(self.rng), stream=True
        )
        self.post_stream("/v1/chat/completions", body, chat_delta)


class OpenAICompletionUser(GatewayUser):
    """Plain (non-streaming) completions."""

    weight = 2

    @task
    def complete(self) -> None:
        prompt = self.rng.choice(PROMPTS)
        body = workload.completion_body(
            self.model, prompt, max_tokens=workload.output_length(self.rng)
        )
        self.post_json("/v1/completions", body)


class GenerateUser(GatewayUser):
    weight = 1

    @task
    def generate(self) -> None:
        body = workload.generate_body(self.rng, PROMPTS, stream=self.rng.random() < 0.5)
        if body.get("stream"):
            self.post_stream("/v1/generate", body, task_delta)
        else:
            self.post_json("/v1/generate", body)


class SummarizeUser(GatewayUser):
    weight = 1

    @task
    def summarize(self) -> None:
        self.post_json("/v1/summarize", workload.summarize_body(self.rng, PROMPTS))


class ClassifyUser(GatewayUser):
    weight = 1

    @task
    def classify(self) -> None:
        self.post_json("/v1/classify", workload.classify_body(self.rng, PROMPTS))


class TaskChatUser(GatewayUser):
    weight = 1

    @task
    def chat(self) -> None:
        body = workload.task_chat_body(self.rng, PROMPTS, stream=self.rng.random() < 0.5)
        if body.get("stream"):
            self.post_stream("/v1/chat", body, task_delta)
        else:
            self.post_json("/v1/chat", body)
