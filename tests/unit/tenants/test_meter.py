"""The usage meter: budgets checked in memory, usage written in the background, windows that
reset at UTC midnight and on the 1st; on a real SQLite store and a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.caller import Caller
from service.config import Settings
from service.errors import BudgetExceededError, StoreUnavailableError
from service.services.tenants.meter import Budget, UsageMeter
from service.services.tenants.windows import Windows
from service.store import Store
from service.store.usage import UsageQuery
from tests.fakes import Clock

TEAM = Caller(key_id="a1b2c3d4e5f6", key_name="team")
NOON = datetime(2027, 3, 31, 12, 0, tzinfo=UTC).timestamp()  # the month's last day


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.from_settings(Settings(data_dir=tmp_path))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def meter_on(store: Store, clock: Clock, **budget: int) -> UsageMeter:
    meter = UsageMeter(store.usage, clock=clock)
    meter.set_budgets({TEAM.key_id or "": Budget(**budget)})
    return meter


def spend(meter: UsageMeter, tokens: int, caller: Caller = TEAM) -> None:
    meter.charge(
        caller,
        endpoint="/v1/chat/completions",
        model="m",
        input_tokens=tokens // 2,
        output_tokens=tokens - tokens // 2,
    )


async def test_a_key_over_its_daily_budget_is_refused_until_midnight(store: Store) -> None:
    clock = Clock(NOON)
    meter = meter_on(store, clock, tokens_per_day=100)
    spend(meter, 99)
    meter.check(TEAM)  # 99 < 100: admitted (and may go past the budget, as the bucket does)
    spend(meter, 30)
    with pytest.raises(BudgetExceededError) as refused:
        meter.check(TEAM)
    error = refused.value
    assert (error.status_code, error.error_type, error.code) == (429, "tokens", "budget_exceeded")
    assert error.retry_after == 12 * 3600  # to midnight, UTC
    assert error.headers() == {"Retry-After": str(12 * 3600), "x-should-retry": "false"}
    assert "100 tokens per day" in error.message
    clock.now += 12 * 3600  # the next day
    meter.check(TEAM)
    assert meter.used(TEAM.key_id or "", "day") == 0


async def test_the_monthly_budget_resets_on_the_first(store: Store) -> None:
    clock = Clock(NOON)
    meter = meter_on(store, clock, tokens_per_day=1000, tokens_per_month=50)
    spend(meter, 60)
    with pytest.raises(BudgetExceededError) as refused:
        meter.check(TEAM)
    assert refused.value.retry_after == 12 * 3600  # the 1st of April is also tomorrow
    assert "per month" in refused.value.message
    clock.now += 12 * 3600
    meter.check(TEAM)


async def test_when_both_budgets_are_used_up_the_later_reset_frees_the_key(store: Store) -> None:
    clock = Clock(datetime(2027, 3, 10, 12, tzinfo=UTC).timestamp())
    meter = meter_on(store, clock, tokens_per_day=10, tokens_per_month=10)
    spend(meter, 10)
    with pytest.raises(BudgetExceededError) as refused:
        meter.check(TEAM)
    month_end = Windows.at(clock.now).month_end
    assert refused.value.retry_after == month_end - int(clock.now)


async def test_keys_without_a_budget_and_the_anonymous_caller_are_never_refused(
    store: Store,
) -> None:
    meter = meter_on(store, Clock(NOON), tokens_per_day=1)
    other = Caller(key_id="0f0f0f0f0f0f")
    spend(meter, 1000, other)
    spend(meter, 1000, Caller())
    meter.check(other)
    meter.check(Caller())


async def test_what_was_counted_is_written_and_survives_a_new_meter(store: Store) -> None:
    clock = Clock(NOON)
    meter = meter_on(store, clock, tokens_per_day=100)
    spend(meter, 120)
    spend(meter, 10, Caller())  # authentication off: usage, no ledger
    await meter.sync()
    restarted = meter_on(store, clock, tokens_per_day=100)
    await restarted.sync()  # reads the totals back, as at start-up
    with pytest.raises(BudgetExceededError):
        restarted.check(TEAM)
    day = Windows.at(clock.now).day_start
    sums = await store.usage.buckets(
        UsageQuery(
            surface="completions",
            start=day,
            end=day + 86_400,
            width=86_400,
            group_by=["api_key_id"],
        )
    )
    assert [
        (s.group["api_key_id"], s.input_tokens + s.output_tokens, s.requests) for s in sums
    ] == [
        ("a1b2c3d4e5f6", 120, 1),
        ("anonymous", 10, 1),
    ]


async def test_two_meters_on_one_store_enforce_one_budget(store: Store) -> None:
    clock = Clock(NOON)
    replicas = [meter_on(store, clock, tokens_per_day=100) for _ in range(2)]
    spend(replicas[0], 60)
    spend(replicas[1], 60)
    for meter in replicas:
        meter.check(TEAM)  # each has seen 60 of its own
    for meter in replicas:
        await meter.sync()
    await replicas[0].sync()  # the first read before the second wrote
    for meter in replicas:
        assert meter.used(TEAM.key_id or "", "day") == 120
        with pytest.raises(BudgetExceededError):
            meter.check(TEAM)


async def test_usage_is_kept_while_the_store_is_down(store: Store, tmp_path: Path) -> None:
    clock = Clock(NOON)
    meter = meter_on(store, clock, tokens_per_day=100)
    spend(meter, 70)
    (tmp_path / "gateway.db").unlink()  # the database file gone: writes fail
    (tmp_path / "gateway.db").mkdir()
    await store.database.dispose()
    with pytest.raises(StoreUnavailableError):
        await meter.sync()
    assert meter.used(TEAM.key_id or "", "day") == 70  # kept for the next sync
    spend(meter, 40)
    with pytest.raises(BudgetExceededError):
        meter.check(TEAM)


async def test_endpoints_that_are_not_metered_are_not_counted(store: Store) -> None:
    meter = meter_on(store, Clock(NOON), tokens_per_day=10)
    meter.charge(TEAM, endpoint="/v1/models", model=None, input_tokens=50, output_tokens=0)
    meter.check(TEAM)
    assert meter.used(TEAM.key_id or "", "day") == 0
