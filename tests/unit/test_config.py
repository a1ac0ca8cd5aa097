"""Settings: defaults, GATEWAY_* environment variables, `python -m service` flags, validation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import CliApp

from service.config import DEFAULT_MODEL, TEST_PROFILE, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own GATEWAY_* variables (and the data folder's XDG base) must not leak
    into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert settings.model == DEFAULT_MODEL
    assert settings.model_name == DEFAULT_MODEL
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_model_len is None
    assert settings.default_max_tokens == 512
    assert settings.max_logprobs == 20
    assert settings.distributed_executor_backend is None
    assert settings.download_dir == Path.home() / ".cache" / "llm-gateway" / "models"
    assert settings.data_dir == Path.home() / ".local" / "share" / "llm-gateway"
    assert settings.database_url is None


def test_the_data_dir_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert Settings().data_dir == Path("/srv/data/llm-gateway")


def test_environment_variables_use_the_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MODEL", "org/model")
    monkeypatch.setenv("GATEWAY_MAX_MODEL_LEN", "2048")
    monkeypatch.setenv("GATEWAY_ENFORCE_EAGER", "true")
    monkeypatch.setenv("GATEWAY_DOWNLOAD_DIR", "/srv/models")
    monkeypatch.setenv("MAX_NUM_SEQS", "3")  # no prefix: not ours
    settings = Settings()
    assert settings.model == "org/model"
    assert settings.max_model_len == 2048
    assert settings.enforce_eager is True
    assert settings.download_dir == Path("/srv/models")
    assert settings.max_num_seqs is None


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    assert Settings(port=9100).port == 9100


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        pytest.param(None, "org/model", id="unset"),
        pytest.param("", "org/model", id="blank"),
        pytest.param("alias", "alias", id="set"),
    ],
)
def test_served_model_name_defaults_to_model(served: str | None, expected: str) -> None:
    settings = Settings(model="org/model", served_model_name=served)
    assert settings.model_name == expected


def test_a_blank_served_model_name_from_the_environment_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_SERVED_MODEL_NAME", "")
    assert Settings(model="org/model").model_name == "org/model"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("port", 0, id="port-0"),
        pytest.param("port", 70000, id="port-too-high"),
        pytest.param("max_model_len", 8, id="max_model_len-tiny"),
        pytest.param("max_num_seqs", 0, id="max_num_seqs-0"),
        pytest.param("dtype", "int4", id="dtype-unknown"),
        pytest.param("log_level", "loud", id="log_level-unknown"),
        pytest.param("gpu_memory_utilization", 1.5, id="gpu_memory_utilization-over-1"),
        pytest.param("tensor_parallel_size", 0, id="tensor_parallel_size-0"),
        pytest.param("distributed_executor_backend", "slurm", id="executor-unknown"),
        pytest.param("cpu_kvcache_space", 0, id="cpu_kvcache_space-0"),
        pytest.param("default_max_tokens", 0, id="default_max_tokens-0"),
        pytest.param("max_logprobs", 21, id="max_logprobs-over-20"),
        pytest.param("sse_keepalive_seconds", 0, id="keepalive-0"),
        pytest.param("not_a_setting", 1, id="unknown-field"),
        pytest.param("trusted_proxies", ["10.0.0.0/8", "router"], id="trusted_proxies-name"),
        pytest.param("redis_failure", "maybe", id="redis_failure-unknown"),
        pytest.param("redis_url", "localhost:6379", id="redis_url-no-scheme"),
        pytest.param("database_url", "mysql://db/gateway", id="database_url-not-postgres"),
        pytest.param("database_url", "sqlite:///gateway.db", id="database_url-sqlite"),
        pytest.param("database_timeout_seconds", 0, id="database_timeout-0"),
        pytest.param("max_queue_wait_seconds", 0, id="max_queue_wait-0"),
    ],
)
def test_an_invalid_value_fails_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert field in str(caught.value)


def test_trusted_proxies_from_the_environment_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]


def test_an_invalid_environment_variable_fails_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"] for e in caught.value.errors()] == [("port",)]


@pytest.mark.parametrize(
    ("fields", "backend"),
    [
        pytest.param({}, None, id="single-device"),
        pytest.param({"tensor_parallel_size": 2}, "mp", id="tensor-parallel-defaults-to-mp"),
        pytest.param({"pipeline_parallel_size": 2}, "mp", id="pipeline-parallel-defaults-to-mp"),
        pytest.param(
            {"tensor_parallel_size": 2, "distributed_executor_backend": "ray"},
            "ray",
            id="explicit-backend-kept",
        ),
    ],
)
def test_parallelism_picks_an_executor_backend(fields: dict[str, Any], backend: str | None) -> None:
    assert Settings(**fields).distributed_executor_backend == backend


def test_cli_flags_are_kebab_case() -> None:
    settings = CliApp.run(
        Settings,
        cli_args=[
            "--max-model-len",
            "2048",
            "--served-model-name",
            "alias",
            "--default-max-tokens",
            "64",
            "--enforce-eager",
            "true",
            "--disable-log-stats",
        ],
    )
    assert settings.max_model_len == 2048
    assert settings.model_name == "alias"
    assert settings.default_max_tokens == 64
    assert settings.enforce_eager is True
    assert settings.disable_log_stats is True


def test_a_boolean_flag_can_be_turned_off() -> None:
    assert CliApp.run(Settings, cli_args=["--no-disable-log-stats"]).disable_log_stats is False


def test_cli_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MAX_MODEL_LEN", "1024")
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    settings = CliApp.run(Settings, cli_args=["--max-model-len", "2048"])
    assert settings.max_model_len == 2048
    assert settings.port == 9000


def test_an_invalid_cli_value_fails_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CliApp.run(Settings, cli_args=["--max-model-len", "8"])
    assert [e["loc"] for e in caught.value.errors()] == [("max_model_len",)]


def test_an_unknown_cli_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        CliApp.run(Settings, cli_args=["--max-modle-len", "2048"])
    assert caught.value.code == 2
    assert "--max-modle-len" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["none", "None", ""])
def test_embedding_model_none_turns_embeddings_off(value: str) -> None:
    settings = Settings(embedding_model=value)
    assert settings.embedding_model is None
    assert settings.embedding_model_name is None


def test_embeddings_are_on_by_default_with_the_default_model() -> None:
    settings = Settings()
    assert settings.embedding_model == DEFAULT_MODEL
    assert settings.embedding_model_name == DEFAULT_MODEL
    assert Settings(**TEST_PROFILE).embedding_model is None  # the test engine runs without
