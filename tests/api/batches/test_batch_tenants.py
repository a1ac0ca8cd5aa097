"""Batch lines meet the tenants' accounts as requests do: their tokens are the key's usage
(reported as batch usage) and count against its budget, and a key whose budget is used up has
its lines wait (retried after the window resets), not failed."""

from __future__ import annotations

import time
from pathlib import Path

import openai
from openai.types.admin.organization import usage_completions_response

from service.engine.fake import FakeEngine
from tests.api.batches.helpers import (
    batch_app,
    chat_line,
    finished,
    results,
    sdk,
    serve_with_drainer,
    submit,
)
from tests.api.batches.test_drainer import run_claimed
from tests.api.helpers import CHAT, chat_body, engine_calls, serve

ADMIN_KEY = "sk-batch-usage-admin-2"
TEAM_KEY = "sk-batch-usage-team-9"
BUDGET = 20  # tokens a day: about two chat requests on the fake engine


def keys_file(tmp_path: Path, *, budget: int | None = None) -> Path:
    path = tmp_path / "keys.toml"
    team_budget = "" if budget is None else f"tokens_per_day = {budget}\n"
    path.write_text(
        f'[[keys]]\nname = "root"\nkey = "{ADMIN_KEY}"\nadmin = true\n'
        f'[[keys]]\nname = "team"\nkey = "{TEAM_KEY}"\n{team_budget}'
    )
    return path


def admin_sdk(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    return client.with_options(admin_api_key=ADMIN_KEY)


async def test_a_batchs_tokens_are_its_keys_usage_reported_as_batch(tmp_path: Path) -> None:
    app = batch_app(FakeEngine(), tmp_path / "data", api_key_file=keys_file(tmp_path))
    async with serve(app) as http:
        started = int(time.time()) - 60
        client = sdk(http, TEAM_KEY)
        done = await finished(
            client, (await submit(client, [chat_line(f"r{i}") for i in range(3)])).id
        )
        outputs = await results(client, done.output_file_id)
        report = await admin_sdk(client).admin.organization.usage.completions(
            start_time=started, group_by=["batch"], bucket_width="1d", limit=5
        )
    usages = [item["response"]["body"]["usage"] for item in outputs.values()]
    assert done.status == "completed" and len(usages) == 3
    found = [r for bucket in report.data for r in bucket.results]
    Result = usage_completions_response.DataResultOrganizationUsageCompletionsResult
    rows = [
        (r.batch, r.input_tokens, r.output_tokens, r.num_model_requests)
        for r in found
        if isinstance(r, Result)
    ]
    assert rows == [
        (
            True,
            sum(u["prompt_tokens"] for u in usages),
            sum(u["completion_tokens"] for u in usages),
            3,
        )
    ]


async def test_a_key_over_its_budget_has_its_lines_wait_not_fail(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = batch_app(
        engine,
        tmp_path / "data",
        api_key_file=keys_file(tmp_path, budget=BUDGET),
        batch_drain=False,
    )
    async with serve_with_drainer(app) as (http, drainer):
        auth = {"Authorization": f"Bearer {TEAM_KEY}"}
        used = 0
        while used < BUDGET:  # the key spends its budget on requests
            answer = await http.post(CHAT, json=chat_body(max_tokens=8), headers=auth)
            assert answer.status_code == 200, answer.text
            used += answer.json()["usage"]["total_tokens"]
        ran = engine_calls(engine)
        client = sdk(http, TEAM_KEY)
        batch = await submit(client, [chat_line(f"r{i}") for i in range(3)])
        await run_claimed(drainer)
        after = await client.batches.retrieve(batch.id)
    assert engine_calls(engine) == ran  # refused before the engine
    assert after.status == "in_progress"
    assert after.request_counts is not None
    assert (after.request_counts.completed, after.request_counts.failed) == (0, 0)
