"""The GPU run: `python -m loadtests.gpu` on a CUDA machine runs the A/B benchmark against vLLM's
own OpenAI server (bf16, CUDA graphs on, concurrency 1/16/64/256, two alternating pairs) and then
the real-engine integration tests, in one command within 10 minutes; results, chart and a
machine description go to `loadtests/results/<timestamp>-cuda/`. `--dry-run` does the same on CPU
(float32, eager, tiny levels, one pair): CI runs it, so the script cannot rot.
"""
