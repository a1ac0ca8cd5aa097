"""/v1/generate against transformers' own `generate` on the same float32 model folder.

Greedy and beam search (each `early_stopping` mode, two length penalties, plus the token bans of
`min_new_tokens` and `no_repeat_ngram_size`) on the same prompts: scores agree to 1e-3 everywhere,
and texts are identical wherever HF's neighbouring hypotheses differ by more than 1e-3 (a near-tie
may fall either way between two float32 implementations). Near-ties are printed (`pytest -s`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.weights.resolve import resolve_model
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TIE = 1e-3
MAX_NEW = 10
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "The best way to learn a new language is",
    "def fibonacci(n):",
    "Water boils at a temperature of",
]
BEAM_CASES = [
    pytest.param(
        {"num_beams": 3, "early_stopping": stopping, "length_penalty": penalty},
        id=f"stop-{stopping}-lp-{penalty}",
    )
    for stopping in (True, False, "never")
    for penalty in (1.0, 2.0)
] + [
    pytest.param(
        {"num_beams": 4, "min_new_tokens": 6, "no_repeat_ngram_size": 2, "length_penalty": 0.5},
        id="bans-4-beams",
    )
]


@dataclass
class HFModel:
    model: Any
    tokenizer: Any


@pytest.fixture(scope="module")
def hf(live_server: LiveServer) -> Iterator[HFModel]:
    path = resolve_model(live_server.settings)  # the folder the engine loaded
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    yield HFModel(model, tokenizer)


def gateway(server: LiveServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx.post(f"{server.base_url}/v1/generate", json=body, timeout=600)
    assert r.status_code == 200, r.text
    generations: list[dict[str, Any]] = r.json()["results"][0]["generations"]
    return generations


def hf_generate(hf: HFModel, prompt: str, **knobs: Any) -> Any:
    inputs = hf.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        return hf.model.generate(
            **inputs,
            max_new_tokens=MAX_NEW,
            do_sample=False,
            return_dict_in_generate=True,
            output_scores=True,
            **knobs,
        ), inputs["input_ids"].shape[1]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_matches_transformers(live_server: LiveServer, hf: HFModel, prompt: str) -> None:
    out, prompt_len = hf_generate(hf, prompt)
    expected = hf.tokenizer.decode(out.sequences[0, prompt_len:], skip_special_tokens=True)
    # The smallest margin between the best and second-best next token along HF's path.
    margin = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores)
    (got,) = gateway(live_server, {"prompt": prompt, "max_new_tokens": MAX_NEW})
    print(f"greedy {prompt!r}: margin {margin:.2e} hf={expected!r} gateway={got['text']!r}")
    if margin > TIE:
        assert got["text"] == expected


@pytest.mark.parametrize("knobs", BEAM_CASES)
def test_beam_search_matches_transformers(
    live_server: LiveServer, hf: HFModel, knobs: dict[str, Any]
) -> None:
    beams = knobs["num_beams"]
    for prompt in PROMPTS:
        out, prompt_len = hf_generate(hf, prompt, num_return_sequences=beams, **knobs)
        hf_scores = [float(s) for s in out.sequences_scores]
        hf_texts = [
            hf.tokenizer.decode(seq[prompt_len:], skip_special_tokens=True) for seq in out.sequences
        ]
        got = gateway(
            live_server,
            {"prompt": prompt, "max_new_tokens": MAX_NEW, "num_return_sequences": beams, **knobs},
        )
        assert [g["score"] for g in got] == pytest.approx(hf_scores, abs=TIE), prompt
        for rank, (expected, generation) in enumerate(zip(hf_texts, got, strict=True)):
            neighbours = hf_scores[max(rank - 1, 0) : rank] + hf_scores[rank + 1 : rank + 2]
            gap = min((abs(hf_scores[rank] - s) for s in neighbours), default=float("inf"))
            line = (
                f"{knobs} {prompt!r} rank {rank}: score hf {hf_scores[rank]:.5f} "
                f"gateway {generation['score']:.5f} gap {gap:.1e}"
            )
            if gap > TIE:
                assert generation["text"] == expected, line
            else:
                print("near-tie:", line, f"hf={expected!r} gateway={generation['text']!r}")
            print(line)
