"""Shared helpers for the deployment checks: repository paths, validator binaries, YAML, and
the Kubernetes manifests (k8s/) as files and as kustomize renders them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A validator binary: the venv's own (pip, `make install-tools`) first, then PATH."""
    local = VENV_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: run `make install-test install-tools`")
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def run_ok(*args: str, cwd: Path = ROOT) -> str:
    """Run a validator; its output is the failure message when it does not exit 0."""
    result = run(*args, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@cache
def settings_env_names() -> frozenset[str]:
    """Every GATEWAY_* variable the server reads."""
    return frozenset(f"GATEWAY_{name.upper()}" for name in Settings.model_fields)


def shutdown_overhead() -> float:
    """Seconds the server may take after the drain: closing connections (engine stop aside)."""
    from service.runtime.server import CLOSE_GRACE_SECONDS

    return float(CLOSE_GRACE_SECONDS)


def default_drain_timeout() -> float:
    return float(Settings.model_fields["drain_timeout_seconds"].default)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s|us)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


def duration_seconds(text: str | int | float) -> float:
    """A compose/Go duration (`1m30s`, `45s`) or a number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = _DURATION.findall(text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


_DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate_defaults(value: str) -> str:
    """Compose interpolation as if .env were empty: `${VAR:-default}` -> default."""
    return _DEFAULTED.sub(lambda m: m.group(2) or "", value)


def variables_used(text: str) -> set[str]:
    return {m.group(1) for m in _DEFAULTED.finditer(text)}


def walk(node: Any) -> Iterator[Any]:
    """Every dict, list and scalar in a parsed YAML/JSON tree."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# --- Kubernetes manifests (k8s/)

K8S = ROOT / "k8s"
OVERLAYS = ("base", "overlays/cpu", "overlays/gpu")

Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    """Whole manifests: not kustomizations, not the partial patches merged into the base."""
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith("-patch.yaml")
    )


def file_docs() -> list[tuple[str, Doc]]:
    """Every document of every manifest file, named `path#index` (relative to k8s/)."""
    return [
        (f"{p.relative_to(K8S)}#{i}", doc)
        for p in manifest_files()
        for i, doc in enumerate(load_all_yaml(p.read_text()))
    ]


@cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    """`kubectl kustomize` of an overlay (or the base), parsed; rendered once per session."""
    out = run_ok(tool("kubectl"), "kustomize", str(K8S / overlay))
    return tuple(load_all_yaml(out))


def the(docs: tuple[Doc, ...], kind: str) -> Doc:
    """The one document of this kind."""
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def container(docs: tuple[Doc, ...]) -> Doc:
    """The gateway container of the rendered Deployment."""
    (gateway,) = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: Doc = gateway
    return result


def settings_of(docs: tuple[Doc, ...]) -> dict[str, str]:
    """The ConfigMap the gateway container reads (by the generated, hashed name)."""
    (ref,) = container(docs)["envFrom"]
    name = ref["configMapRef"]["name"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    data: dict[str, str] = config["data"]
    return data
