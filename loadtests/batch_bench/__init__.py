"""The Batch API's two figures (docs/benchmarks.md), on one gateway process:

1. interactive TTFT p50/p99 at `--clients` (4) concurrent streaming chat clients while a
   `--lines` (1,000) line chat batch drains, against the same load with no batch;
2. the batch's throughput on an idle gateway against the same lines sent as concurrent requests
   at the batch's in-flight bound (`batch_max_inflight_fraction` x `max_num_seqs`).

    .venv/bin/python -m loadtests.batch_bench            # ~15 min on 2 CPU cores
    .venv/bin/python -m loadtests.batch_bench --quick    # a few minutes
    .venv/bin/python -m loadtests.batch_bench --help

Every line and request is a chat completion of `--max-tokens` tokens (`ignore_eos`, greedy),
so all do the same work. The gateway runs the A/B benchmark's engine profile (float32, eager,
2048 context, `max_num_seqs` 8, 1 GiB KV cache) with `scheduling_policy=priority`, a store of
its own in a temporary folder, and a patient watchdog (`engine_stall_seconds` 900: on a
machine loaded by other work a step may take minutes, which is not a dead engine). The report
(`loadtests/results/batch-<time>/report.json`, saved after each phase, and a Markdown table on
stdout) keeps the settings, the machine and its load average before and after.
"""
