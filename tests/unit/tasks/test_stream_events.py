"""A streaming task's events: a step that only adds text is written through a text slot
(`services/core/chunk_json.py`), the others by their model; either way each event is the dump
of its own model, and the deltas add up to the whole answer."""

from __future__ import annotations

from typing import Any

import pytest

from service.caller import Caller
from service.config import Settings
from service.engine.fake import FakeEngine
from service.schemas.tasks import GenerateRequest, TaskChunk
from service.services.tasks import generate
from tests.conftest import FAKE_MODEL

REPLY = 'Le "café" à 東京\\ est ouvert 😀 ce soir.'


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"prompt": "Say hi"}, id="one-prompt"),
        pytest.param({"prompts": ["Say hi", "Say bye"]}, id="two-prompts"),
        pytest.param(
            {"prompt": "Say hi", "do_sample": True, "num_return_sequences": 2}, id="two-sequences"
        ),
        pytest.param({"prompt": "Say hi", "max_new_tokens": 3}, id="cut"),
    ],
)
async def test_generate_events_are_their_models_dump(fields: dict[str, Any]) -> None:
    engine = FakeEngine(reply=REPLY)
    settings = Settings(model=FAKE_MODEL, default_max_tokens=24)
    prepared = generate.prepare(
        GenerateRequest.model_validate({**fields, "stream": True}), engine, settings, Caller()
    )
    texts: dict[tuple[int, int], str] = {}
    async for event in generate.stream(prepared, engine):
        model = TaskChunk.model_validate_json(event)
        exclude = {"usage"} if model.usage is None else None
        assert model.model_dump_json(exclude=exclude) == event
        for delta in model.results:
            key = (delta.index, delta.sequence)
            texts[key] = texts.get(key, "") + delta.delta
    whole = await generate.generate(prepared, engine)
    assert texts == {
        (result.index, s): generation.text
        for result in whole.results
        for s, generation in enumerate(result.generations)
    }
