"""The CPU engines' KV-cache sizes: `auto` derived from the model, the context and the
concurrency asked for, or the operator's GiB; refused at start-up when one request at
`max_model_len` would not fit.

Pure: the shape is read from vLLM's resolved config in `compat.kv_shape`, the machine's
memory here from /proc and the cgroup files (no vLLM import).

    bytes a token  = layers x KV heads x head size x 2 (K and V) x dtype bytes
    generation     = max_num_seqs x max_model_len tokens, at most cpu_kvcache_memory_share
                     of the machine's memory, and never less than one request at max_model_len
    embedding      = max_model_len tokens (one input at full length, or as many tokens of
                     shorter inputs; a pooling request holds its blocks for its prefill only)

in whole blocks, plus the one block vLLM keeps back (its null block).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

GIB = 1 << 30
Purpose = Literal["generation", "embedding"]


class KVCacheTooSmallError(ValueError):
    """A KV-cache size that cannot hold one request at `max_model_len`: start-up stops."""


@dataclass(frozen=True, slots=True)
class KVShape:
    """What a token of KV cache costs in one engine, and how vLLM allocates it."""

    layers: int
    kv_heads: int
    head_size: int
    dtype_bytes: int
    block_size: int
    max_model_len: int
    max_num_seqs: int

    @property
    def bytes_per_token(self) -> int:
        return self.layers * self.kv_heads * self.head_size * 2 * self.dtype_bytes

    @property
    def bytes_per_block(self) -> int:
        return self.block_size * self.bytes_per_token

    def blocks_for(self, tokens: int) -> int:
        """Blocks vLLM needs to hold `tokens` tokens for requests, its null block included."""
        return math.ceil(tokens / self.block_size) + 1

    @property
    def min_bytes(self) -> int:
        """One request at `max_model_len`: vLLM refuses to start with less."""
        return self.blocks_for(self.max_model_len) * self.bytes_per_block

    def wanted_tokens(self, purpose: Purpose) -> int:
        """Tokens `auto` asks for before the memory cap: every sequence the generation engine
        batches at full context; one input at full context for the embedding engine."""
        if purpose == "embedding":
            return self.max_model_len
        return self.max_num_seqs * self.max_model_len


@dataclass(frozen=True, slots=True)
class KVPlan:
    """The size one engine gets, and how it was reached (logged at start-up)."""

    purpose: Purpose
    setting: str
    value: float | Literal["auto"]
    shape: KVShape
    blocks: int
    capped_at: int | None = None  # bytes: the memory share decided, not the formula

    @property
    def bytes(self) -> int:
        return self.blocks * self.shape.bytes_per_block

    @property
    def tokens(self) -> int:
        """Tokens for requests: vLLM keeps one block back."""
        return (self.blocks - 1) * self.shape.block_size

    def describe(self) -> str:
        s = self.shape
        if self.value != "auto":
            how = f"{self.setting}={self.value:g} GiB"
        elif self.purpose == "generation":
            how = (
                f"{self.setting}=auto: max_num_seqs {s.max_num_seqs} x max_model_len "
                f"{s.max_model_len} tokens"
            )
        else:
            how = f"{self.setting}=auto: max_model_len {s.max_model_len} tokens"
        if self.capped_at is not None:
            how += f", capped at {_gib(self.capped_at)} GiB (cpu_kvcache_memory_share)"
        return (
            f"{self.purpose} engine KV cache: {_gib(self.bytes)} GiB, {self.tokens:,} tokens "
            f"({self.blocks} blocks of {s.block_size}, one kept back by vLLM), "
            f"{self.tokens / s.max_model_len:.2f} requests at max_model_len; "
            f"{s.bytes_per_token:,} bytes a token ({s.layers} layers x {s.kv_heads} KV heads x "
            f"{s.head_size} x 2 x {s.dtype_bytes} bytes); {how}"
        )

    @property
    def above_share(self) -> bool:
        """An `auto` size that took more than the memory share, to hold one full request."""
        return self.capped_at is not None and self.bytes > self.capped_at


def plan(
    purpose: Purpose,
    *,
    setting: str,
    value: float | Literal["auto"],
    shape: KVShape,
    memory_bytes: int,
    memory_share: float,
) -> KVPlan:
    """The KV cache of one CPU engine. `auto` never holds less than one request at
    `max_model_len`, even past the memory share; an explicit size that small raises
    `KVCacheTooSmallError`, naming the setting and the numbers."""
    if value != "auto":
        result = KVPlan(purpose, setting, value, shape, int(value * GIB) // shape.bytes_per_block)
        if result.bytes < shape.min_bytes:
            raise KVCacheTooSmallError(
                f"{setting}={value:g} GiB holds {result.tokens:,} tokens of KV cache "
                f"({shape.bytes_per_token:,} bytes a token, in blocks of {shape.block_size}), "
                f"fewer than one request at max_model_len {shape.max_model_len} needs "
                f"({_gib(shape.min_bytes)} GiB). Raise {setting} to at least "
                f"{math.ceil(shape.min_bytes / GIB * 100) / 100:g}, lower max_model_len, or "
                f"leave {setting} at auto."
            )
        return result
    wanted = shape.blocks_for(shape.wanted_tokens(purpose))
    cap = int(memory_share * memory_bytes)
    if wanted * shape.bytes_per_block <= cap:
        return KVPlan(purpose, setting, value, shape, wanted)
    floor = shape.blocks_for(shape.max_model_len)
    return KVPlan(
        purpose, setting, value, shape, max(floor, cap // shape.bytes_per_block), capped_at=cap
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def machine_memory_bytes(root: Path = Path("/")) -> int:
    """The memory this process may use: the machine's, or its cgroup's limit when lower (a
    container's `memory.max` in cgroup v2, `memory.limit_in_bytes` in v1)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = (root / limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total
