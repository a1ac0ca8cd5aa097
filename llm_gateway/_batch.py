"""`python -m llm_gateway batch run INPUT.jsonl --endpoint /v1/summarize -o OUT.jsonl`: a whole
batch from a file, with the openai SDK's Files and Batch calls (nothing the SDK lacks).

INPUT holds one request per line, either OpenAI's batch line (`{"custom_id", "method", "url",
"body"}`; `method` and `url` may be left out) or just the body (`{"text": ...}`), which gets the
custom_id `line-<n>`. The command uploads the requests, creates the batch, shows a progress bar
while it runs (Ctrl+C cancels it), then writes every line's result to OUT in the input's order,
in OpenAI's output format (`{"id", "custom_id", "response", "error"}`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import openai
from tqdm import tqdm

from llm_gateway._client import Client

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class InputError(ValueError):
    """A line of the input file that is not a request; the message says which."""


def request_lines(path: Path, endpoint: str) -> Iterator[dict[str, Any]]:
    """Each line of `path` as a batch request line for `endpoint`."""
    with path.open(encoding="utf-8") as source:
        for number, text in enumerate(source, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError as err:
                raise InputError(f"{path}:{number}: not JSON ({err})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            if "body" not in value:  # just the body
                value = {"custom_id": f"line-{number}", "body": value}
            if value.setdefault("url", endpoint) != endpoint:
                raise InputError(f"{path}:{number}: url {value['url']} is not {endpoint}")
            value.setdefault("method", "POST")
            yield value


def _upload(client: Client, path: Path, endpoint: str) -> tuple[str, list[str]]:
    """Upload the requests; (the file's id, the custom_ids in input order)."""
    custom_ids: list[str] = []
    with tempfile.TemporaryFile("w+b") as spool:
        for line in request_lines(path, endpoint):
            custom_ids.append(str(line.get("custom_id")))
            spool.write(json.dumps(line).encode() + b"\n")
        spool.seek(0)
        uploaded = client.files.create(file=(path.name, spool), purpose="batch")
    return uploaded.id, custom_ids


def _wait(client: Client, batch_id: str, *, poll: float, quiet: bool) -> Any:
    """Poll the batch until it ends, with a progress bar of its finished requests."""
    batch = client.batches.retrieve(batch_id)
    total = batch.request_counts.total if batch.request_counts else 0
    with tqdm(total=total, unit="req", desc=batch_id, disable=quiet, file=sys.stderr) as bar:
        while True:
            counts = batch.request_counts
            if counts is not None:
                bar.total = counts.total
                bar.update(counts.completed + counts.failed - bar.n)
                bar.set_postfix(status=batch.status, failed=counts.failed, refresh=False)
            if batch.status in FINAL:
                return batch
            time.sleep(poll)
            batch = client.batches.retrieve(batch_id)


def _results(client: Client, file_id: str | None) -> Iterator[dict[str, Any]]:
    if file_id is None:
        return
    with client.files.with_streaming_response.content(file_id) as response:
        for text in response.iter_lines():
            if text.strip():
                yield json.loads(text)


def _write(client: Client, batch: Any, custom_ids: list[str], out: IO[str]) -> int:
    """The results in input order; how many lines have none (not run: a cancelled batch)."""
    found: dict[str, dict[str, Any]] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        for line in _results(client, file_id):
            found[line["custom_id"]] = line
    missing = 0
    for custom_id in custom_ids:
        result = found.get(custom_id)
        if result is None:
            missing += 1
            continue
        out.write(json.dumps(result) + "\n")
    return missing


def run(
    client: Client,
    source: Path,
    endpoint: str,
    target: Path,
    *,
    metadata: dict[str, str] | None = None,
    poll: float = 1.0,
    quiet: bool = False,
) -> int:
    """Run a whole batch; the exit status (0: every request succeeded)."""
    file_id, custom_ids = _upload(client, source, endpoint)
    batch = client.batches.create(
        input_file_id=file_id,
        endpoint=endpoint,  # type: ignore[arg-type]  # the gateway's task endpoints too
        completion_window="24h",
        metadata=metadata,
    )
    try:
        batch = _wait(client, batch.id, poll=poll, quiet=quiet)
    except KeyboardInterrupt:
        client.batches.cancel(batch.id)
        print(f"{batch.id}: cancelled", file=sys.stderr)
        return 130
    if batch.status == "failed":
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        for error in errors:
            print(f"{source}:{error.line}: {error.message}", file=sys.stderr)
        return 1
    with target.open("w", encoding="utf-8") as out:
        missing = _write(client, batch, custom_ids, out)
    counts = batch.request_counts
    failed = counts.failed if counts else 0
    print(
        f"{batch.id} {batch.status}: {len(custom_ids) - failed - missing} succeeded, "
        f"{failed} failed, {missing} not run -> {target}",
        file=sys.stderr,
    )
    return 0 if batch.status == "completed" and not failed else 1


def main(args: Any) -> int:
    metadata = dict(pair.split("=", 1) for pair in args.metadata) if args.metadata else None
    try:
        with Client(base_url=args.base_url, api_key=args.api_key) as client:
            return run(
                client,
                Path(args.input),
                args.endpoint,
                Path(args.output),
                metadata=metadata,
                poll=args.poll,
                quiet=args.quiet,
            )
    except (InputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except openai.APIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
