"""The usage report: OpenAI's query parameters (as the SDK and curl send them), buckets and
pages, and who sees which key's usage; on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.caller import Caller
from service.config import Settings
from service.errors import InvalidRequestError
from service.schemas.organization import UsageCompletionsResult
from service.services.tenants import usage_report
from service.store import Store

DAY = 86_400
T0 = 1_800_000_000 - 1_800_000_000 % DAY  # a UTC midnight
ADMIN = Caller(key_id="aaaaaaaaaaaa", key_name="root", admin=True)
TEAM = Caller(key_id="bbbbbbbbbbbb", key_name="team")
NAMES = {"aaaaaaaaaaaa": "root", "bbbbbbbbbbbb": "team"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.from_settings(Settings(data_dir=tmp_path))
    await opened.open()
    await opened.usage.add(
        {
            (T0, "completions", "aaaaaaaaaaaa", "m1", False): [10, 1, 1],
            (T0 + 120, "completions", "bbbbbbbbbbbb", "m1", False): [20, 2, 2],
            (T0 + DAY, "completions", "bbbbbbbbbbbb", "m2", True): [40, 4, 1],
            (T0 + 3 * DAY, "completions", "anonymous", "m1", False): [80, 8, 1],
            (T0, "embeddings", "bbbbbbbbbbbb", "e", False): [5, 0, 1],
        },
        {},
    )
    try:
        yield opened
    finally:
        await opened.close()


def query(**params: str | list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        pairs += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return pairs


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({}, "start_time", id="no-start"),
        pytest.param({"start_time": "soon"}, "start_time", id="start-not-a-number"),
        pytest.param({"start_time": "10", "end_time": "5"}, "end_time", id="end-before-start"),
        pytest.param({"start_time": "0", "bucket_width": "1w"}, "bucket_width", id="width"),
        pytest.param({"start_time": "0", "limit": "32"}, "limit", id="limit-over-31-days"),
        pytest.param(
            {"start_time": "0", "bucket_width": "1m", "limit": "0"}, "limit", id="limit-0"
        ),
        pytest.param({"start_time": "0", "group_by": "project_id"}, "group_by", id="group-project"),
        pytest.param({"start_time": "0", "project_ids": "p"}, "project_ids", id="project-filter"),
        pytest.param({"start_time": "0", "colour": "red"}, "colour", id="unknown"),
        pytest.param({"start_time": "0", "batch": "maybe"}, "batch", id="batch-not-a-bool"),
        pytest.param({"start_time": "0", "page": "7"}, "page", id="page-off-the-grid"),
        pytest.param({"start_time": ["0", "1"]}, "start_time", id="start-twice"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        usage_report.parse("completions", query(**params), now=T0 + DAY)
    assert refused.value.param == param and refused.value.status_code == 400


def test_batch_and_its_grouping_are_for_completions_only() -> None:
    with pytest.raises(InvalidRequestError, match="group_by"):
        usage_report.parse("embeddings", query(start_time="0", group_by="batch"))
    with pytest.raises(InvalidRequestError, match="batch"):
        usage_report.parse("embeddings", query(start_time="0", batch="true"))


@pytest.mark.parametrize(
    "group_by",
    [
        pytest.param([("group_by", "model"), ("group_by", "api_key_id")], id="repeated"),
        pytest.param([("group_by[]", "model"), ("group_by[]", "api_key_id")], id="brackets"),
        pytest.param([("group_by", "model,api_key_id")], id="comma-separated"),
    ],
)
def test_lists_are_read_as_the_sdk_and_curl_send_them(group_by: list[tuple[str, str]]) -> None:
    params = usage_report.parse("completions", [("start_time", str(T0)), *group_by], now=T0 + 1)
    assert params.group_by == ("model", "api_key_id")
    assert (params.width, params.limit, params.end) == ("1d", 7, T0 + 2)  # now, included


async def test_an_admin_sees_every_key_by_name_and_empty_buckets_are_listed(store: Store) -> None:
    params = usage_report.parse(
        "completions", query(start_time=str(T0), group_by="api_key_id"), now=T0 + 4 * DAY - 1
    )
    page = await usage_report.report(store.usage, "completions", params, ADMIN, names=NAMES)
    assert [b.start_time for b in page.data] == [T0 + i * DAY for i in range(4)]
    assert page.data[-1].end_time == T0 + 4 * DAY and not page.has_more
    rows = [
        [(r.api_key_id, r.api_key_name, r.input_tokens, r.num_model_requests) for r in b.results]
        for b in page.data
    ]
    assert rows == [
        [("aaaaaaaaaaaa", "root", 10, 1), ("bbbbbbbbbbbb", "team", 20, 2)],
        [("bbbbbbbbbbbb", "team", 40, 1)],
        [],
        [(None, None, 80, 1)],  # authentication was off then: no key
    ]


async def test_a_plain_key_sees_its_own_usage_only(store: Store) -> None:
    params = usage_report.parse(
        "completions",
        query(start_time=str(T0), group_by="api_key_id", api_key_ids="aaaaaaaaaaaa"),
        now=T0 + 2 * DAY - 1,
    )
    page = await usage_report.report(store.usage, "completions", params, TEAM, names=NAMES)
    assert all(b.results == [] for b in page.data)  # it asked for another key's: nothing
    params = usage_report.parse("completions", query(start_time=str(T0)), now=T0 + 2 * DAY - 1)
    page = await usage_report.report(store.usage, "completions", params, TEAM, names=NAMES)
    totals = [
        [(r.input_tokens, r.api_key_id, r.api_key_name) for r in b.results] for b in page.data
    ]
    assert totals == [[(20, None, None)], [(40, None, None)]]


async def test_filters_and_the_batch_grouping(store: Store) -> None:
    params = usage_report.parse(
        "completions",
        query(start_time=str(T0), group_by=["batch", "model"], models="m2"),
        now=T0 + 2 * DAY - 1,
    )
    page = await usage_report.report(store.usage, "completions", params, ADMIN, names=NAMES)
    results = [r for b in page.data for r in b.results]
    assert all(isinstance(r, UsageCompletionsResult) for r in results)
    assert [
        (r.batch, r.model, r.output_tokens)
        for r in results
        if isinstance(r, UsageCompletionsResult)
    ] == [(True, "m2", 4)]
    params = usage_report.parse(
        "completions", query(start_time=str(T0), batch="false"), now=T0 + 2 * DAY - 1
    )
    page = await usage_report.report(store.usage, "completions", params, ADMIN, names=NAMES)
    assert [r.input_tokens for b in page.data for r in b.results] == [30]


async def test_pages_follow_each_other_by_the_cursor(store: Store) -> None:
    pages = []
    cursor: str | None = None
    while True:
        params = usage_report.parse(
            "completions",
            query(start_time=str(T0), limit="3", **({"page": cursor} if cursor else {})),
            now=T0 + 7 * DAY - 1,
        )
        page = await usage_report.report(store.usage, "completions", params, ADMIN, names=NAMES)
        pages.append([(b.start_time - T0) // DAY for b in page.data])
        if not page.has_more:
            assert page.next_page is None
            break
        cursor = page.next_page
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]


async def test_embeddings_have_input_tokens_only(store: Store) -> None:
    params = usage_report.parse(
        "embeddings", query(start_time=str(T0), bucket_width="1h", limit="1"), now=T0 + DAY
    )
    page = await usage_report.report(store.usage, "embeddings", params, ADMIN, names=NAMES)
    assert page.has_more and page.next_page == str(T0 + 3600)
    result = page.data[0].results[0]
    assert result.object == "organization.usage.embeddings.result"
    assert (result.input_tokens, result.num_model_requests) == (5, 1)
    assert "output_tokens" not in result.model_dump()
