"""The GPU run's parts that need no engine: its CUDA profile (the same settings for both servers,
flags both servers accept), the deployment files it must agree with, the model runner read from
logs, the flashinfer switch, the test step's JUnit totals and the run's checks."""

from __future__ import annotations

import importlib.util
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import CliApp

from loadtests.gpu import describe
from loadtests.gpu.__main__ import main
from loadtests.gpu.profiles import CUDA, DRY_RUN
from loadtests.gpu.run import checks, junit_counts
from service.config import TEST_PROFILE, Settings

ROOT = Path(__file__).resolve().parents[2]


def vllm_server_parser() -> Any:
    """vLLM's own `api_server` argument parser (its module moved between releases)."""
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    try:
        from vllm.entrypoints.openai.cli_args import make_arg_parser  # 0.26
    except ImportError:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser  # 0.32
    return make_arg_parser(FlexibleArgumentParser())


def test_the_cuda_profile_is_bf16_with_cuda_graphs_at_the_asked_levels() -> None:
    assert CUDA.platform == "cuda"
    assert (CUDA.engine.dtype, CUDA.engine.enforce_eager) == ("bfloat16", False)
    assert CUDA.concurrency == (1, 16, 64, 256) and CUDA.pairs == 2
    assert CUDA.engine.max_num_seqs >= max(CUDA.concurrency)
    assert CUDA.tests == ("-m", "engine", "tests/integration")
    assert (DRY_RUN.engine.dtype, DRY_RUN.engine.enforce_eager) == ("float32", True)
    assert DRY_RUN.pairs == 1


def test_both_servers_accept_the_cuda_profile_and_read_the_same_values() -> None:
    vllm_args = vllm_server_parser().parse_args(
        ["--model", "m", *shlex.split(CUDA.engine.vllm_args())]
    )
    gateway = CliApp.run(Settings, cli_args=shlex.split(CUDA.engine.gateway_args()))
    pairs = [
        (vllm_args.dtype, gateway.dtype, "bfloat16"),
        (vllm_args.enforce_eager, gateway.enforce_eager, False),
        (vllm_args.max_model_len, gateway.max_model_len, 2048),
        (vllm_args.max_num_seqs, gateway.max_num_seqs, 256),
        (vllm_args.gpu_memory_utilization, gateway.gpu_memory_utilization, 0.4),
    ]
    for vllm_value, gateway_value, expected in pairs:
        assert vllm_value == gateway_value == expected
    # The run keeps the setting's default: on GPU, vLLM's default model runner.
    assert gateway.no_repeat_ngram == "auto"


def test_the_gpu_shares_leave_room_for_every_engine_started_at_once() -> None:
    # The benchmark's two resident servers; then the integration tests' shared engine, the
    # lifecycle tests' server and the one they kill. vLLM refuses to start without its share free.
    assert 2 * (CUDA.engine.gpu_memory_utilization or 1.0) <= 0.8
    assert 3 * TEST_PROFILE["gpu_memory_utilization"] <= 0.8


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_gpu_deployments_run_what_the_gpu_run_measures() -> None:
    overlay = env_file(ROOT / "k8s/overlays/gpu/gateway.env")
    compose = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    compose_env = compose["services"]["gateway"]["environment"]
    # The same runner choice as the run (auto = off on GPU), stated where operators look.
    assert overlay["GATEWAY_NO_REPEAT_NGRAM"] == "auto"
    assert compose_env["GATEWAY_NO_REPEAT_NGRAM"] == "${GATEWAY_NO_REPEAT_NGRAM:-auto}"
    # Neither turns off CUDA graphs or forces a dtype the run does not use.
    for env in (overlay, compose_env):
        assert "GATEWAY_ENFORCE_EAGER" not in env
        assert env.get("GATEWAY_DTYPE", "auto") in ("auto", CUDA.engine.dtype)


GATEWAY_LINE = (
    '{"level": "INFO", "logger": "service.engine.vllm.adapter", '
    '"message": "vLLM model runner: V2 (no_repeat_ngram auto: off)"}'
)


@pytest.mark.parametrize(
    ("log", "runner"),
    [
        pytest.param(GATEWAY_LINE, "V2", id="gateway"),
        pytest.param("INFO 11-27 [gpu_worker.py:378] Using V2 Model Runner", "V2", id="vllm-v2"),
        pytest.param(
            "WARNING [vllm.py:585] Model Runner V2 does not yet support custom logits "
            "processors; using the V1 model runner instead.",
            "V1",
            id="vllm-0.26-fallback",
        ),
        pytest.param(
            "WARNING Model Runner V2 requires Triton; using the V1 model runner instead.",
            "V1",
            id="vllm-cpu",
        ),
        pytest.param(
            "(Worker pid=1) INFO 11-27 18:50:35 [cpu_model_runner.py:68] Starting to load model",
            "V1",
            id="vllm-cpu-worker",
        ),
        pytest.param("INFO nothing about runners", None, id="silent"),
    ],
)
def test_the_model_runner_is_read_from_a_servers_log(log: str, runner: str | None) -> None:
    assert describe.runner_in_log(f"start\n{log}\nend\n") == runner


@pytest.mark.parametrize(
    ("platform", "flashinfer", "preset", "chosen"),
    [
        pytest.param("cuda", None, None, {"VLLM_USE_FLASHINFER_SAMPLER": "0"}, id="cuda-without"),
        pytest.param("cuda", "0.6.1", None, {}, id="cuda-with-flashinfer"),
        pytest.param("cuda", None, "1", {}, id="cuda-operator-chose"),
        pytest.param("cpu", None, None, {}, id="cpu"),
    ],
)
def test_the_flashinfer_sampler_is_turned_off_only_where_it_is_missing_on_cuda(
    monkeypatch: pytest.MonkeyPatch,
    platform: Any,
    flashinfer: str | None,
    preset: str | None,
    chosen: dict[str, str],
) -> None:
    monkeypatch.setattr(describe, "flashinfer_version", lambda: flashinfer)
    monkeypatch.setenv("VLLM_USE_FLASHINFER_SAMPLER", preset or "")
    if preset is None:
        monkeypatch.delenv("VLLM_USE_FLASHINFER_SAMPLER")
    assert describe.prepare_environment(platform) == chosen
    assert os.environ.get("VLLM_USE_FLASHINFER_SAMPLER") == (
        preset or chosen.get("VLLM_USE_FLASHINFER_SAMPLER")
    )


def test_junit_totals_and_failed_tests(tmp_path: Path) -> None:
    xml = tmp_path / "tests.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.a" name="test_ok"/>'
        '<testcase classname="tests.a" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.a" name="test_later"><skipped/></testcase>'
        "</testsuite></testsuites>"
    )
    assert junit_counts(xml) == {
        "tests": 3,
        "failures": 1,
        "errors": 0,
        "skipped": 1,
        "failed": ["tests.a::test_bad"],
    }
    assert junit_counts(tmp_path / "absent.xml")["tests"] == 0


def test_checks_fail_on_different_runners_errors_or_failed_tests() -> None:
    levels = {"c=1": {"errors": {"a": 0, "b": 0}}}
    good = {"bench": {"levels": levels}, "model_runner": {"A": "V2", "B": "V2"}}
    assert all(checks({**good, "tests": {"returncode": 0}}, tests_wanted=True).values())
    downgraded = {**good, "model_runner": {"A": "V2", "B": "V1"}, "tests": {"returncode": 0}}
    assert checks(downgraded, tests_wanted=True)["same_model_runner"] is False
    failed = checks({**good, "tests": {"returncode": 1}}, tests_wanted=True)
    assert failed["tests_passed"] is False
    broken = checks(
        {**good, "bench": {"error": "A did not start"}, "tests": {}}, tests_wanted=False
    )
    assert broken == {"benchmark_ran": False, "no_request_errors": False, "same_model_runner": True}


def test_without_a_gpu_the_run_refuses_and_points_at_the_dry_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("loadtests.gpu.__main__.gpus", lambda: None)
    assert main([]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_missing_packages_are_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name in ("schemathesis", "asgi_lifespan") else real(name),
    )
    assert describe.missing_modules(CUDA) == {"tests": ["asgi_lifespan", "schemathesis"]}
    assert describe.missing_modules(DRY_RUN) == {"tests": ["asgi_lifespan"]}
    monkeypatch.setattr("loadtests.gpu.__main__.gpus", lambda: [{"name": "H100"}])
    assert main([]) == 2
    assert "carry-test.txt" in capsys.readouterr().err
