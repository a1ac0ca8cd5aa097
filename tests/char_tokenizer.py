"""A tiny Hugging Face tokenizer built in memory, for vLLM's tool-call and reasoning parsers
without a model: one token per printable character, plus the special tokens the tested formats
need (hermes, llama3_json, mistral, deepseek_r1), and model text cut the way a stream brings it."""

from __future__ import annotations

import re
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = ["<|python_tag|>", "[TOOL_CALLS]", "[ARGS]", "<think>", "</think>"]


def make_tokenizer(special: list[str]) -> Any:
    """One token per printable character, plus `special` as whole tokens."""
    chars = [chr(c) for c in range(32, 127)]
    vocab = {token: i for i, token in enumerate(["<unk>", "</s>", *special, *chars])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        eos_token="</s>",
        additional_special_tokens=special,
    )


def pieces(text: str) -> list[str]:
    """Model text as a stream brings it: special tokens whole, the rest 3 characters a time."""
    out: list[str] = []
    for part in re.split(r"(<\|python_tag\|>|\[TOOL_CALLS\]|\[ARGS\]|</?think>)", text):
        if part in SPECIAL:
            out.append(part)
        else:
            out.extend(part[i : i + 3] for i in range(0, len(part), 3))
    return [p for p in out if p]


def ids_of(tokenizer: Any, piece: str) -> list[int]:
    return list(tokenizer.encode(piece, add_special_tokens=False))
