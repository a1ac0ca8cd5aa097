"""`/v1/organization/usage/completions` and `.../embeddings`: OpenAI's usage report from the
store's minutes.

The query's parameters are OpenAI's: `start_time` (inclusive) and `end_time` (exclusive; by
default the next second) in Unix seconds, `bucket_width` (`1m`, `1h`, `1d`; default `1d`),
`group_by` (`api_key_id`, `model`, and for completions `batch`), the filters `api_key_ids`,
`models` (and `batch`), `limit` buckets a page and the `page` cursor. A list is repeated
(`group_by=model&group_by=api_key_id`), written with brackets as the openai SDK sends it
(`group_by[]=model`), or comma-separated. Buckets start at `start_time` and follow each other
by the width; every bucket of the page is listed, an empty one with no results. Usage is kept
by the minute, so a bound inside a minute counts that minute's usage by its start.

Who sees what: a plain key its own usage only; an admin key (and anyone while authentication
is off) every key's, and with `group_by=api_key_id` each key's name beside its id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

from service.caller import Caller
from service.errors import InvalidRequestError, UnsupportedParameterError
from service.schemas.organization import (
    UsageBucket,
    UsageCompletionsResult,
    UsageEmbeddingsResult,
    UsagePage,
)
from service.store import ANONYMOUS_OWNER
from service.store.usage import GroupField, Surface, UsageQuery, UsageStore, UsageSums

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86_400}
# (default, largest) buckets a page, by width: OpenAI's.
LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
GROUPS: dict[Surface, tuple[GroupField, ...]] = {
    "completions": get_args(GroupField),
    "embeddings": ("api_key_id", "model"),
}
_LISTS = ("group_by", "api_key_ids", "models", "project_ids", "user_ids")
_SCALARS = ("start_time", "end_time", "bucket_width", "limit", "page", "batch")
_UNSUPPORTED = ("project_ids", "user_ids")  # no projects or users here


@dataclass(frozen=True, slots=True)
class UsageParams:
    start: int
    end: int
    width: str
    limit: int
    page_start: int
    group_by: tuple[GroupField, ...]
    key_ids: tuple[str, ...] | None
    models: tuple[str, ...] | None
    batch: bool | None


def _integer(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(
            f"'{name}' must be a whole number (Unix seconds for times).", param=name
        ) from None
    if not 0 <= value < 2**53:
        raise InvalidRequestError(f"'{name}' is out of range.", param=name)
    return value


def _collect(query: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    scalars: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for raw_name, value in query:
        name = raw_name.removesuffix("[]")
        if name in _LISTS:
            lists.setdefault(name, []).extend(v for v in value.split(",") if v)
        elif name in _SCALARS:
            if name in scalars:
                raise InvalidRequestError(f"'{name}' is given more than once.", param=name)
            scalars[name] = value
        else:
            raise InvalidRequestError(
                f"Unrecognized query parameter: {raw_name}",
                param=raw_name,
                code="unknown_parameter",
            )
    return scalars, lists


def _group_by(surface: Surface, given: list[str] | None) -> tuple[GroupField, ...]:
    allowed = GROUPS[surface]
    chosen: list[GroupField] = []
    for name in given or ():
        field = next((g for g in allowed if g == name), None)
        if field is None:
            raise InvalidRequestError(
                f"group_by: '{name}' is not one of {', '.join(allowed)} (this gateway has no "
                "projects, users or service tiers).",
                param="group_by",
            )
        if field not in chosen:
            chosen.append(field)
    return tuple(chosen)


def _batch(surface: Surface, raw: str | None) -> bool | None:
    if raw is None:
        return None
    if surface != "completions":
        raise InvalidRequestError("'batch' filters completions only.", param="batch")
    if raw.lower() not in ("true", "false"):
        raise InvalidRequestError("'batch' must be true or false.", param="batch")
    return raw.lower() == "true"


def _window(scalars: dict[str, str], now: int) -> tuple[int, int, str, int, int]:
    """(start, end, width, limit, page start) from the scalars."""
    if "start_time" not in scalars:
        raise InvalidRequestError("'start_time' is required (Unix seconds).", param="start_time")
    start = _integer("start_time", scalars["start_time"])
    # By default up to now, the current second included (so the current minute's usage too).
    end = _integer("end_time", scalars["end_time"]) if "end_time" in scalars else now + 1
    if end <= start:
        raise InvalidRequestError("'end_time' must be after 'start_time'.", param="end_time")
    width = scalars.get("bucket_width", "1d")
    if width not in WIDTHS:
        raise InvalidRequestError("'bucket_width' must be 1m, 1h or 1d.", param="bucket_width")
    default, largest = LIMITS[width]
    limit = _integer("limit", scalars["limit"]) if "limit" in scalars else default
    if not 1 <= limit <= largest:
        raise InvalidRequestError(
            f"'limit' must be from 1 to {largest} with bucket_width {width}.", param="limit"
        )
    page_start = start
    if "page" in scalars:
        page_start = _integer("page", scalars["page"])
        if not start <= page_start < end or (page_start - start) % WIDTHS[width]:
            raise InvalidRequestError("'page' is not a cursor of this query.", param="page")
    return start, end, width, limit, page_start


def parse(
    surface: Surface, query: Sequence[tuple[str, str]], *, now: int | None = None
) -> UsageParams:
    """The report's parameters from the query string; 400 naming the parameter at fault."""
    scalars, lists = _collect(query)
    for name in _UNSUPPORTED:
        if name in lists:
            raise UnsupportedParameterError(
                f"'{name}' is not supported: this gateway has no projects or users.", param=name
            )
    start, end, width, limit, page_start = _window(
        scalars, int(time.time()) if now is None else now
    )
    key_ids, models = lists.get("api_key_ids"), lists.get("models")
    return UsageParams(
        start=start,
        end=end,
        width=width,
        limit=limit,
        page_start=page_start,
        group_by=_group_by(surface, lists.get("group_by")),
        key_ids=None if key_ids is None else tuple(key_ids),
        models=None if models is None else tuple(models),
        batch=_batch(surface, scalars.get("batch")),
    )


def _visible_keys(caller: Caller, requested: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The keys whose usage the caller may see, narrowed to those it asked for."""
    if caller.admin:
        return requested
    own = caller.key_id or ANONYMOUS_OWNER
    return (own,) if requested is None or own in requested else ()


def _result(
    surface: Surface, sums: UsageSums, names: Mapping[str, str] | None
) -> UsageCompletionsResult | UsageEmbeddingsResult:
    group = dict(sums.group)
    key_id = group.pop("api_key_id", None)
    if key_id == ANONYMOUS_OWNER:
        key_id = None  # authentication was off: no key
    common = {
        "input_tokens": sums.input_tokens,
        "num_model_requests": sums.requests,
        "api_key_id": key_id,
        "api_key_name": None if names is None or key_id is None else names.get(key_id),
        "model": group.get("model"),
    }
    if surface == "embeddings":
        return UsageEmbeddingsResult(**common)
    return UsageCompletionsResult(
        **common, output_tokens=sums.output_tokens, batch=group.get("batch")
    )


async def report(
    usage: UsageStore,
    surface: Surface,
    params: UsageParams,
    caller: Caller,
    *,
    names: Mapping[str, str],
) -> UsagePage:
    """One page of buckets. `names` are the keys' names, shown to admins beside their ids."""
    width = WIDTHS[params.width]
    page_end = min(params.end, params.page_start + params.limit * width)
    key_ids = _visible_keys(caller, params.key_ids)
    sums: list[UsageSums] = []
    if key_ids != ():
        sums = await usage.buckets(
            UsageQuery(
                surface=surface,
                start=params.page_start,
                end=page_end,
                width=width,
                group_by=params.group_by,
                key_ids=key_ids,
                models=params.models,
                batch=params.batch,
            )
        )
    shown_names = names if caller.admin and caller.authenticated else None
    by_bucket: dict[int, list[UsageSums]] = {}
    for row in sums:
        by_bucket.setdefault(row.bucket, []).append(row)
    buckets = []
    for index, bucket_start in enumerate(range(params.page_start, page_end, width)):
        results = [_result(surface, row, shown_names) for row in by_bucket.get(index, ())]
        buckets.append(
            UsageBucket(
                start_time=bucket_start,
                end_time=min(bucket_start + width, params.end),
                results=results,
            )
        )
    has_more = page_end < params.end
    return UsagePage(data=buckets, has_more=has_more, next_page=str(page_end) if has_more else None)
