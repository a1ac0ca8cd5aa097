"""Settings: one class, read from `GATEWAY_*` environment variables and `python -m service` flags.

Its fields are defined by section in `server.py`, `engine.py`, `serving.py` and `store.py` (so
no module grows past a screenful of sections); the class here adds the validators that read
across them.

Field names follow vLLM's own engine arguments where one exists (`max_model_len`,
`max_num_seqs`, ...), so an operator who knows `vllm serve` knows these.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from service.config.engine import DEFAULT_MODEL, EngineSettings, default_cache_dir
from service.config.server import ServerSettings
from service.config.serving import ServingSettings
from service.config.store import StoreSettings

__all__ = ["DEFAULT_MODEL", "TEST_PROFILE", "Settings", "default_cache_dir"]


# Fields in the order of the bases, last first: server, engine, serving, store.
class Settings(StoreSettings, ServingSettings, EngineSettings, ServerSettings):
    """Everything an operator tunes. Every field is also a `python -m service --kebab-case` flag."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="python -m service",
        extra="forbid",
    )

    @field_validator(
        "api_keys", "cors_allow_origins", "trusted_proxies", "lora_modules", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as err:
                raise ValueError(f"not an IP address or CIDR: {entry!r}") from err
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("tool_call_parser", "reasoning_parser", "chat_template")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("chat_template")
    @classmethod
    def _read_template(cls, value: str | None) -> str | None:
        if value is None or "{%" in value or "{{" in value:
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"chat_template: {value!r} is neither a file nor a Jinja template")
        return path.read_text(encoding="utf-8")

    @field_validator("served_model_name", "embedding_served_model_name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _none_turns_off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("lora_modules")
    @classmethod
    def _name_equals_path(cls, value: list[str]) -> list[str]:
        names = [module.partition("=")[0].strip() for module in value]
        for module, name in zip(value, names, strict=True):
            if not name or not module.partition("=")[2].strip():
                raise ValueError(f"lora_modules: {module!r} is not name=path")
        if len(set(names)) != len(names):
            raise ValueError("lora_modules: a name is given twice")
        return value

    @property
    def lora_adapters(self) -> dict[str, str]:
        """`lora_modules` as {name: path}."""
        return {m.partition("=")[0].strip(): m.partition("=")[2].strip() for m in self.lora_modules}

    @property
    def enable_lora(self) -> bool:
        return bool(self.lora_modules) or self.enable_lora_runtime_updates

    @model_validator(mode="after")
    def _check_parallelism(self) -> Settings:
        if self.tensor_parallel_size * self.pipeline_parallel_size > 1 and (
            self.distributed_executor_backend is None
        ):
            self.distributed_executor_backend = "mp"
        return self

    @model_validator(mode="after")
    def _check_heartbeats(self) -> Settings:
        # A live replica must record its runs at least twice within the time that declares it
        # dead, or a slow heartbeat fails runs that are still running.
        if self.background_stale_seconds < 2 * self.background_heartbeat_seconds:
            raise ValueError(
                "background_stale_seconds must be at least twice background_heartbeat_seconds"
            )
        return self

    @property
    def playground_enabled(self) -> bool:
        """Whether /playground is served: as set, or on when authentication is off."""
        if self.playground is not None:
            return self.playground
        return not self.api_keys and self.api_key_file is None

    @property
    def model_name(self) -> str:
        """The name clients send as `model` and see in responses."""
        return self.served_model_name or self.model

    @property
    def embedding_model_name(self) -> str | None:
        """The name clients send as `model` to /v1/embeddings and /v1/rerank; None = off."""
        if self.embedding_model is None:
            return None
        return self.embedding_served_model_name or self.embedding_model


# Small enough for the real-engine test suite and the quick benchmark on 2 cores.
TEST_PROFILE: dict[str, Any] = {
    "max_model_len": 2048,
    "max_num_seqs": 8,
    "cpu_kvcache_space": 1,
    # On one GPU the integration tests hold up to three engines at once (the shared one, the
    # lifecycle tests' server and one they kill); CPU engines size by cpu_kvcache_space instead.
    "gpu_memory_utilization": 0.25,
    "enforce_eager": True,
    "seed": 0,
    # The shared test engine is the generation one; embedding tests start their own.
    "embedding_model": "none",
}
