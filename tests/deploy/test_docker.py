"""The Dockerfile: hadolint, and what the deployment needs from each image target."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.deploy.helpers import ROOT, run_ok, tool

DOCKERFILE = ROOT / "Dockerfile"
HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"
SERVER_TARGETS = ("cpu", "gpu")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name}: no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                values[key] = value.strip('"')
        return values


def parse_dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages, instructions with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, re.IGNORECASE)
            assert match, f"every stage is named: FROM {rest}"
            current = Stage(name=match.group(2), base=match.group(1))
            stages[current.name] = current
        elif current is None:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name] = default
        else:
            current.instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse_dockerfile()


def base_image(stage: Stage) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], stage.base)


def test_hadolint_passes() -> None:
    run_ok(tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))


def test_targets_exist() -> None:
    assert {"cpu", "gpu", "loadtest"} <= set(STAGES)
    assert base_image(STAGES["gpu"]).startswith("vllm/vllm-openai:v")


def test_base_images_are_pinned() -> None:
    for stage in STAGES.values():
        if stage.base in STAGES:  # built on an earlier stage
            continue
        image = base_image(stage)
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{stage.name}: {image} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{stage.name}: {image} has no version in its tag"


@pytest.mark.parametrize("target", SERVER_TARGETS)
def test_server_image_runs_as_non_root(target: str) -> None:
    user = STAGES[target].last("USER")
    assert user.split(":")[0] not in {"root", "0"}, f"{target} runs as {user}"


@pytest.mark.parametrize("target", SERVER_TARGETS)
def test_server_image_healthcheck_polls_ready(target: str) -> None:
    healthcheck = STAGES[target].last("HEALTHCHECK")
    assert "--start-period=" in healthcheck
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[-1] == "/usr/local/bin/healthcheck.py"
    assert "/ready" in HEALTHCHECK_SCRIPT.read_text()
    copies = " ".join(STAGES[target].all("COPY"))
    assert "deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py" in copies


@pytest.mark.parametrize("target", SERVER_TARGETS)
def test_server_image_signals_reach_the_server(target: str) -> None:
    stage = STAGES[target]
    assert stage.last("STOPSIGNAL") == "SIGTERM"
    entrypoint = json.loads(stage.last("ENTRYPOINT"))  # exec form: a JSON array, no shell
    assert isinstance(entrypoint, list)
    assert entrypoint[0] in {"python", "python3"} and entrypoint[1:] == ["-m", "service"]
    env = stage.env()
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert stage.last("EXPOSE") == env["GATEWAY_PORT"] == "8000"


def test_cpu_image_has_the_default_model_prepared_at_build_time() -> None:
    download_dir = STAGES["cpu"].env()["GATEWAY_DOWNLOAD_DIR"]
    prepares = " ".join(STAGES["cpu-model"].all("RUN"))
    assert f"python -m service.weights prepare --download-dir {download_dir}" in prepares
    copied = [c for c in STAGES["cpu"].all("COPY") if c.startswith("--from=cpu-model")]
    assert copied and copied[0].endswith(f"{download_dir} {download_dir}")


def test_gpu_image_takes_models_from_a_volume() -> None:
    stage = STAGES["gpu"]
    env = stage.env()
    volumes = json.loads(stage.last("VOLUME"))
    assert env["GATEWAY_DOWNLOAD_DIR"] in volumes
    assert env["HF_HOME"].startswith(env["GATEWAY_DOWNLOAD_DIR"] + "/")


def test_cpu_install_mirrors_the_makefile() -> None:
    """Same torch build, same constraints, same packages removed as `make install`."""
    makefile = (ROOT / "Makefile").read_text()
    torch = re.search(r"^TORCH \?= torch==(\S+)", makefile, re.MULTILINE)
    broken = re.search(r"^BROKEN_BESIDE_TORCH_CPU := (.+)$", makefile, re.MULTILINE)
    index = re.search(r"^TORCH_CPU_INDEX \?= (\S+)", makefile, re.MULTILINE)
    assert torch and broken and index
    deps = STAGES["cpu-deps"]
    assert f"TORCH_VERSION={torch.group(1)}" in deps.all("ARG")
    assert f"TORCH_CPU_INDEX={index.group(1)}" in deps.all("ARG")
    assert f'BROKEN_BESIDE_TORCH_CPU="{broken.group(1)}"' in deps.all("ARG")
    assert f"torch=={torch.group(1)}\n" in (ROOT / "constraints.txt").read_text()
    run_line = " ".join(deps.all("RUN"))
    assert 'pip install -c constraints.txt ".[cpu,prepare]"' in run_line
    assert "pip uninstall --yes ${BROKEN_BESIDE_TORCH_CPU}" in run_line


def test_dockerignore_allows_only_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything is excluded first (.venv, .git, models, ...)"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for stage in STAGES.values():
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = [part for part in copy.split() if not part.startswith("--")]
            for source in sources:
                assert any(source == a or source.startswith(a + "/") for a in allowed), (
                    f"COPY {source} is excluded by .dockerignore"
                )
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
    assert "loadtests/results" in lines


class _Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ready_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _healthcheck(port: int) -> int:
    env = {**os.environ, "GATEWAY_PORT": str(port)}
    env.pop("GATEWAY_HEALTHCHECK_URL", None)
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT)], env=env, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_script_follows_ready(ready_server: HTTPServer) -> None:
    port = ready_server.server_address[1]
    assert isinstance(port, int)
    _Ready.status = 200
    assert _healthcheck(port) == 0
    _Ready.status = 503  # starting, draining or dead
    assert _healthcheck(port) == 1


def test_healthcheck_script_fails_when_nothing_listens(ready_server: HTTPServer) -> None:
    port = ready_server.server_address[1]
    assert isinstance(port, int)
    ready_server.shutdown()
    ready_server.server_close()
    assert _healthcheck(port) == 1
