"""The gateway's beam loop against transformers' `generate` on a tiny random model, no engine.

The same tiny Llama answers both: HF runs its own `_beam_search`; ours asks it for the top-k
log-probabilities of each running beam, as the engine step does. Every `early_stopping` mode,
several length penalties and the token bans must give HF's hypotheses and `sequences_scores`.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

from service.services.tasks.beam_search import BeamConfig, BeamState, search

EOS = 3
VOCAB = 48


@pytest.fixture(scope="module")
def tiny_lm() -> Any:
    torch.manual_seed(7)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=EOS,
        pad_token_id=EOS,
        bos_token_id=1,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # peaky distributions: random init is near-uniform, all near-ties
        model.lm_head.weight.mul_(60.0)
    return model


def step_of(model: Any) -> Any:
    async def step(token_ids: list[int], k: int) -> list[tuple[int, float]]:
        with torch.no_grad():
            logits = model(torch.tensor([token_ids])).logits[0, -1].float()
        top = torch.log_softmax(logits, dim=-1).topk(k)
        return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))

    return step


CASES = [
    pytest.param({"early_stopping": stop, "length_penalty": lp}, id=f"{stop}-lp{lp}")
    for stop in (True, False, "never")
    for lp in (1.0, 2.0, -1.0)
] + [
    pytest.param({"min_new_tokens": 5, "no_repeat_ngram_size": 2}, id="bans"),
    pytest.param({"no_repeat_ngram_size": 1, "length_penalty": 0.0}, id="ngram-1"),
]


@pytest.mark.parametrize("prompt", [[1, 5, 9], [1, 20, 21, 22, 7]])
@pytest.mark.parametrize("knobs", CASES)
async def test_hypotheses_and_scores_are_transformers(
    tiny_lm: Any, prompt: list[int], knobs: dict[str, Any]
) -> None:
    beams, max_new = 3, 8
    with torch.no_grad():
        out = tiny_lm.generate(
            torch.tensor([prompt]),
            num_beams=beams,
            num_return_sequences=beams,
            max_new_tokens=max_new,
            do_sample=False,
            return_dict_in_generate=True,
            output_scores=True,
            **knobs,
        )
    config = BeamConfig(
        num_beams=beams,
        max_new_tokens=max_new,
        eos_token_ids=(EOS,),
        length_penalty=knobs.get("length_penalty", 1.0),
        early_stopping=knobs.get("early_stopping", False),
        min_new_tokens=knobs.get("min_new_tokens", 0),
        no_repeat_ngram_size=knobs.get("no_repeat_ngram_size", 0),
    )
    found = await search(prompt, config, step_of(tiny_lm))
    expected_scores = [float(s) for s in out.sequences_scores]
    assert [h.score for h in found] == pytest.approx(expected_scores, abs=1e-4)
    for hypothesis, sequence in zip(found, out.sequences.tolist(), strict=True):
        generated = sequence[len(prompt) :]
        # HF pads shorter hypotheses with the pad token (= EOS here) after their EOS.
        assert list(hypothesis.token_ids) == generated[: len(hypothesis.token_ids)]
        assert set(generated[len(hypothesis.token_ids) :]) <= {EOS}


def test_ngram_bans_include_the_prompt_as_hf_does() -> None:
    config = BeamConfig(num_beams=2, max_new_tokens=4, eos_token_ids=(EOS,), no_repeat_ngram_size=2)
    state = BeamState(config, (5, 6, 5))
    (beam,) = state.running
    assert state.banned(beam) == {6}  # "5 6" is in the prompt; after "5", 6 is banned


def test_min_new_tokens_bans_eos_until_reached() -> None:
    config = BeamConfig(num_beams=2, max_new_tokens=4, eos_token_ids=(EOS,), min_new_tokens=1)
    state = BeamState(config, (5,))
    (beam,) = state.running
    assert state.banned(beam) == {EOS}
    state.advance([[(7, -0.1), (8, -0.2), (9, -0.3), (10, -0.4)]])
    assert all(state.banned(b) == set() for b in state.running)
