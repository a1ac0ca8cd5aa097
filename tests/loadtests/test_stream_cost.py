"""The stream-cost benchmark end to end, in a tiny form: every level measures every case, and
counts the events the streams really carried."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.stream_cost.__main__ import main
from loadtests.stream_cost.server import MAX_TOKENS


def test_every_level_measures_every_case(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    args = ["--levels", "service,app,server", "--rounds", "2", "--tokens", "8"]
    args += ["--streams", "2", "--requests", "3", "--concurrency", "2", "--json", str(out)]
    assert main(args) == 0
    rows = {(row["level"], row["case"]): row for row in json.loads(out.read_text())}
    assert set(rows) == {
        *(("service", c) for c in ("chat", "chat-usage", "chat-required", "completions")),
        ("service", "generate"),
        *(("app", c) for c in ("chat", "chat-required", "completions", "generate")),
        ("server", "chat"),
        ("server", "completions"),
    }
    for row in rows.values():
        assert row["us_per_event_min"] > 0
        assert row["us_per_event_min"] <= row["us_per_event_median"] <= row["us_per_event_max"]
        assert len(row["rounds"]) == 2
        assert "," not in row["digest"]  # both rounds sent the same bytes
    # service: an event a token, the chat's opening, the usage event; two streams a round
    assert rows["service", "chat"]["events_per_round"] == 2 * (1 + 8)
    assert rows["service", "chat-usage"]["events_per_round"] == 2 * (1 + 8 + 1)
    assert rows["service", "completions"]["events_per_round"] == 2 * 8
    assert rows["service", "generate"]["events_per_round"] == 2 * (8 + 1)
    # app and server: the `data:` lines the client got, [DONE] included; three requests a round
    assert rows["app", "chat"]["events_per_round"] == 3 * (1 + 8 + 1)
    assert rows["app", "completions"]["events_per_round"] == 3 * (8 + 1)
    assert rows["server", "chat"]["events_per_round"] == 3 * (1 + MAX_TOKENS + 1)
    assert rows["server", "completions"]["events_per_round"] == 3 * (MAX_TOKENS + 1)
