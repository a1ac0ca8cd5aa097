"""Where the engine's model comes from: the prepared offline copy, or the setting as given."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from service.config import DEFAULT_MODEL, Settings
from service.weights import prepared_path, resolve_model
from service.weights.prepare import is_prepared, prepare


def _fake_prepared(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0")


def test_default_model_uses_prepared_copy(tmp_path: Path) -> None:
    _fake_prepared(prepared_path(DEFAULT_MODEL, tmp_path))
    settings = Settings(download_dir=tmp_path)
    assert resolve_model(settings) == str(tmp_path / "HuggingFaceTB--SmolLM2-135M-Instruct")


def test_default_model_without_copy_goes_to_vllm_as_id(tmp_path: Path) -> None:
    assert resolve_model(Settings(download_dir=tmp_path)) == DEFAULT_MODEL


@pytest.mark.parametrize("model", ["org/other-model", "/models/local-folder"])
def test_other_models_pass_through(tmp_path: Path, model: str) -> None:
    assert resolve_model(Settings(model=model, download_dir=tmp_path)) == model


def test_prepare_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = prepared_path(DEFAULT_MODEL, tmp_path)
    _fake_prepared(target)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a prepared model must not be downloaded again")

    monkeypatch.setattr(subprocess, "run", no_download)
    assert prepare(DEFAULT_MODEL, tmp_path) == target


def test_half_written_folder_is_not_prepared(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not is_prepared(folder)


def test_unknown_model_has_no_offline_source(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="No offline source"):
        prepare("org/unknown", tmp_path)
