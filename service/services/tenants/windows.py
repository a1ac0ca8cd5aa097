"""The budgets' windows: UTC calendar days and months, named by their first second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class Windows:
    """The day and the month a moment falls in: [start, end) in Unix seconds."""

    day_start: int
    day_end: int
    month_start: int
    month_end: int

    @classmethod
    def at(cls, now: float) -> Windows:
        day_start = int(now // DAY_SECONDS) * DAY_SECONDS
        moment = datetime.fromtimestamp(day_start, UTC)
        month = moment.replace(day=1)
        following = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
        return cls(
            day_start=day_start,
            day_end=day_start + DAY_SECONDS,
            month_start=int(month.timestamp()),
            month_end=int(following.timestamp()),
        )

    def holds(self, now: float) -> bool:
        return self.day_start <= now < self.day_end
