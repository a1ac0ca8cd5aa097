"""The multi-node example (k8s/examples/multinode-leaderworkerset.yaml): a LeaderWorkerSet whose
parallelism, readiness and shutdown add up."""

from __future__ import annotations

from tests.deploy.helpers import (
    K8S,
    load_all_yaml,
    settings_env_names,
    shutdown_overhead,
    the,
)


def test_multinode_example_adds_up() -> None:
    """The LeaderWorkerSet sketch: Ray backend, and TP x PP = GPUs in one group."""
    docs = tuple(load_all_yaml((K8S / "examples" / "multinode-leaderworkerset.yaml").read_text()))
    lws = the(docs, "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    (leader,) = template["leaderTemplate"]["spec"]["containers"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in leader["env"]}
    assert set(env) <= settings_env_names() | {"HF_TOKEN"}
    assert env["GATEWAY_DISTRIBUTED_EXECUTOR_BACKEND"] == "ray"
    gpus = [c["resources"]["limits"]["nvidia.com/gpu"] for c in (leader, worker)]
    assert gpus[0] == gpus[1]
    group_gpus = template["size"] * gpus[0]
    parallel = int(env["GATEWAY_TENSOR_PARALLEL_SIZE"]) * int(env["GATEWAY_PIPELINE_PARALLEL_SIZE"])
    assert parallel == group_gpus
    script = leader["args"][0]
    assert f'get("GPU", 0) < {group_gpus}' in script
    assert script.strip().splitlines()[-1] == "exec python3 -m service"
    assert leader["readinessProbe"]["httpGet"]["path"] == "/ready"
    drain = float(env["GATEWAY_DRAIN_TIMEOUT_SECONDS"] or 0)
    sleep = int(leader["lifecycle"]["preStop"]["exec"]["command"][1])
    grace = template["leaderTemplate"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > sleep + drain + shutdown_overhead()
    service = the(docs, "Service")
    assert service["spec"]["selector"] == template["leaderTemplate"]["metadata"]["labels"]
