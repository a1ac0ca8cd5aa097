"""The docs' settings page is generated from `Settings` (docs/hooks/settings_page.py): every field
is in it, with its environment variable and flag, so the page cannot drift from the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from service.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    """The hook, loaded from its file (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "settings_page", DOCS / "hooks" / "settings_page.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(markdown: str) -> dict[str, list[str]]:
    """Table rows by setting name: the cells of `| \\`name\\` | ... |` lines."""
    out = {}
    for line in markdown.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            out[cells[0].strip("`")] = cells
    return out


def test_every_field_is_in_the_table_with_its_variable_and_flag(hook: ModuleType) -> None:
    table = rows(hook.settings_table())
    assert set(table) == set(Settings.model_fields)
    for name, cells in table.items():
        _, env, flags, _type, default, description = cells
        assert env == f"`GATEWAY_{name.upper()}`"
        assert f"`--{name.replace('_', '-')}`" in flags
        assert default, name
        assert description, f"{name} has no description: give its Field one"


def test_the_page_gets_the_table_in_place_of_its_markers(hook: ModuleType) -> None:
    page = (DOCS / "settings.md").read_text()
    built = hook.fill(page)
    assert hook.MARKER not in built and hook.END_MARKER not in built
    assert "`GATEWAY_MODEL`" in built and "`--max-model-len`" in built


def test_bools_have_both_flags_and_defaults_read_as_an_operator_writes_them(
    hook: ModuleType,
) -> None:
    table = rows(hook.settings_table())
    assert table["log_prompts"][2] == "`--log-prompts`, `--no-log-prompts`"
    assert table["log_prompts"][4] == "`false`"
    assert table["download_dir"][4] == "`~/.cache/llm-gateway/models`"
    assert table["api_keys"][4] == "empty"
    assert table["max_model_len"][4] == "`None`"
    assert "≥ 1" in table["port"][3] and "≤ 65535" in table["port"][3]
