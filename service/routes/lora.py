"""/v1/load_lora_adapter and /v1/unload_lora_adapter: runtime adapter changes (thin handlers).

Off unless `enable_lora_runtime_updates` (then these paths are 404s, as on `vllm serve`); with
API keys on, only keys marked `admin = true` in the key file may call them.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.http.deps import CallerDep, EngineDep, SettingsDep
from service.schemas.lora import LoadLoRAAdapterRequest, LoRAAdapterStatus, UnloadLoRAAdapterRequest
from service.services import registry

router = APIRouter(prefix="/v1", tags=["lora"])


@router.post("/load_lora_adapter")
async def load_lora_adapter(
    request: LoadLoRAAdapterRequest, engine: EngineDep, settings: SettingsDep, caller: CallerDep
) -> LoRAAdapterStatus:
    """Load a PEFT adapter; requests then name it in `model`. A failed load is a 400 and the
    server goes on serving."""
    await registry.load_adapter(request.lora_name, request.lora_path, engine, settings, caller)
    return LoRAAdapterStatus(status="loaded", lora_name=request.lora_name)


@router.post("/unload_lora_adapter")
async def unload_lora_adapter(
    request: UnloadLoRAAdapterRequest, engine: EngineDep, settings: SettingsDep, caller: CallerDep
) -> LoRAAdapterStatus:
    """Unload an adapter; its name is a 404 from then on."""
    await registry.unload_adapter(request.lora_name, engine, settings, caller)
    return LoRAAdapterStatus(status="unloaded", lora_name=request.lora_name)
