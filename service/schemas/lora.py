"""The LoRA admin endpoints, named and shaped as vLLM's: /v1/load_lora_adapter and
/v1/unload_lora_adapter."""

from __future__ import annotations

from pydantic import BaseModel

from service.schemas.common import NonEmptyStr, RequestModel


class LoadLoRAAdapterRequest(RequestModel):
    lora_name: NonEmptyStr
    lora_path: NonEmptyStr


class UnloadLoRAAdapterRequest(RequestModel):
    lora_name: NonEmptyStr


class LoRAAdapterStatus(BaseModel):
    status: str
    lora_name: str
