"""`python -m loadtests.bench [--quick | --tiny-model]`: the A/B benchmark, vLLM's own OpenAI
server (A) against the gateway (B) on the same model and engine settings, with byte-identical
seeded requests.

    config   the two server commands, the workload's shape, the CLI
    servers  subprocesses in their own process group, always stopped
    driver   the async streaming client: closed-loop levels and Poisson arrivals
    stats    per-level figures, B/A ratios over alternating pairs, the A-vs-A noise floor
    engine_metrics  where a level's TTFT went, from the servers' own Prometheus histograms
    tiny     the tiny random-weight model of --tiny-model (built once, reused)
    report   machine description, report.json, summary.md, chart.png
    run      the course of a benchmark
"""
