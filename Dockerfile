# syntax=docker/dockerfile:1.7
#
# One image, two modes, chosen by the build arg BUILD_MODE:
#   compute    (tag :latest)      ComfyUI in the foreground on 0.0.0.0:8188, JupyterLab on 8189
#   serverless (tag :serverless)  ComfyUI on 127.0.0.1:8188, then the RunPod handler
#
#   docker build --build-arg BUILD_MODE=serverless -t comfy-worker:serverless .
#   docker build --build-arg BUILD_MODE=serverless --build-arg BAKE_MODELS=GAUSSIAN \
#       --secret id=hf_token,env=HF_TOKEN -t comfy-worker:serverless-gaussian .
#
# Everything that is installed comes from manifest.toml (ComfyUI, torch, custom nodes, pip
# packages, models) through `python -m provision`; README.md ("Container and boot") describes every build arg.
# Stages: base (OS, Python, user) -> builder (venv + ComfyUI + nodes + this worker)
#         -> models (BAKE_MODELS, Option B) -> runtime -> runtime-compute | runtime-serverless.

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG BUILD_MODE=serverless

# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Python 3.12 is Ubuntu 24.04's; tini is PID 1 and passes signals to the whole process group
# (-g), so SIGTERM reaches ComfyUI too after start.sh has exec'd the handler. libgl1 and
# libglib2.0-0 are what opencv-based custom nodes need at import time.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        libgl1 \
        libglib2.0-0 \
        python3 \
        python3-venv \
        tini \
    ; \
    rm -rf /var/lib/apt/lists/*; \
    tini --version; \
    python3 --version

# The unprivileged user everything runs as (uid 1000, which Ubuntu's images give to "ubuntu").
RUN set -eux; \
    if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi; \
    groupadd --gid 1000 comfy; \
    useradd --uid 1000 --gid comfy --create-home --shell /bin/bash comfy; \
    python3 -m venv "$VIRTUAL_ENV"; \
    python --version

# ---------------------------------------------------------------------------------------------
FROM base AS builder

# git fetches ComfyUI and the nodes; the compilers build any node requirement without a wheel.
# None of them reach the serverless image.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends build-essential git python3-dev; \
    rm -rf /var/lib/apt/lists/*; \
    git --version

WORKDIR /opt/worker
COPY manifest.toml ./
COPY provision ./provision

# PyTorch first: the slowest layer, and the one that changes least.
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    python -m provision install torch; \
    python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

# ComfyUI at the manifest's version, or this tag/branch/commit; "latest" = newest release tag.
ARG COMFYUI_VERSION=""
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    python -m provision install comfyui --dest /comfyui --version "$COMFYUI_VERSION"; \
    PYTHONPATH=/comfyui python -c 'import comfyui_version; print("ComfyUI", comfyui_version.__version__)'

# Custom nodes at their pinned commits and the extra pip packages (SageAttention), at build
# time: the serverless image never runs git or pip at boot.
ARG NODE_GROUPS=ALL
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    python -m provision install nodes --dest /comfyui --groups "$NODE_GROUPS"; \
    python -m provision install packages --groups "$NODE_GROUPS"; \
    python -m pip check || echo "pip check reports conflicts above (custom nodes pin loosely); not fatal"

# This worker, from its source, not editable. Its dependency ranges are pyproject.toml's.
# (comfy_worker is the project's endpoint client, declared as its console script; the test
# server stays out.)
COPY pyproject.toml README.md /opt/worker/src/
COPY handler /opt/worker/src/handler
COPY comfy_worker /opt/worker/src/comfy_worker
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    python -m pip install /opt/worker/src; \
    rm -rf /opt/worker/src; \
    python -m pip check || echo "pip check: the worker's dependencies conflict with a node's (above); not fatal"; \
    python -c 'import handler, runpod; print("handler ok, runpod", runpod.__version__)'

# ---------------------------------------------------------------------------------------------
# Option B: models baked into the image, verified against the manifest at build time.
# BAKE_MODELS="" (the default) bakes nothing and models are downloaded at boot (Option A).
# A gated model needs a token, passed as a BuildKit secret so it is in no layer:
#   --secret id=hf_token,env=HF_TOKEN
FROM base AS models

WORKDIR /opt/worker
COPY manifest.toml ./
COPY provision ./provision
ARG BAKE_MODELS=""
ARG DOWNLOAD_REQUIRE_SHA256=false
RUN --mount=type=secret,id=hf_token,required=false \
    set -eux; \
    mkdir -p /comfyui/models; \
    if [ -n "$BAKE_MODELS" ]; then \
        if [ -s /run/secrets/hf_token ]; then export HF_TOKEN_FILE=/run/secrets/hf_token; fi; \
        DOWNLOAD_REQUIRE_SHA256="$DOWNLOAD_REQUIRE_SHA256" COMFYUI_PATH=/comfyui \
            python -m provision download --groups "$BAKE_MODELS" --root /comfyui/models; \
    fi

# ---------------------------------------------------------------------------------------------
FROM base AS runtime

COPY --from=builder --chown=comfy:comfy /opt/venv /opt/venv
COPY --from=builder --chown=comfy:comfy /comfyui /comfyui
COPY --link --from=models --chown=1000:1000 /comfyui/models /comfyui/models

# The worker's own files stay root-owned: the user runs them but cannot change them.
COPY manifest.toml /opt/worker/manifest.toml
COPY provision /opt/worker/provision
COPY scripts /opt/worker/scripts
COPY extra_model_paths.yaml /comfyui/extra_model_paths.yaml

ARG BUILD_MODE
ARG CUDA_IMAGE
ARG COMFYUI_VERSION=""
ARG NODE_GROUPS=ALL
ARG VCS_REF=unknown
# A copied file can get a new mtime: restamp the baked models (verified moments ago in the
# models stage) so boots skip them without hashing. BUILD_INFO tells runtime-init which image
# this is.
RUN set -eux; \
    PYTHONPATH=/opt/worker python -m provision restamp --root /comfyui/models; \
    find /comfyui/models -user root -exec chown comfy:comfy {} +; \
    chmod 0755 /opt/worker/scripts/*.sh; \
    printf 'build_mode=%s\ncomfyui_version=%s\nnode_groups=%s\nvcs_ref=%s\n' \
        "$BUILD_MODE" "$COMFYUI_VERSION" "$NODE_GROUPS" "$VCS_REF" >/opt/worker/BUILD_INFO; \
    cat /comfyui/.provision/comfyui.json >>/opt/worker/BUILD_INFO; \
    bash -n /opt/worker/scripts/start.sh

ENV COMFYUI_PATH=/comfyui \
    COMFY_PORT=8188 \
    COMFY_PID_FILE=/tmp/comfyui.pid \
    COMFY_LOG_FILE=/tmp/comfyui.log \
    PROVISION_MANIFEST=/opt/worker/manifest.toml \
    NODE_GROUPS=${NODE_GROUPS}

# The CI adds org.opencontainers.image.source/created from the repository (docker/metadata-action).
ARG VERSION=dev
LABEL org.opencontainers.image.title="comfy-serverless-worker" \
      org.opencontainers.image.description="ComfyUI for RunPod: a serverless worker (:serverless) and a compute pod (:latest)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="${CUDA_IMAGE}"

WORKDIR /comfyui
# ComfyUI answers GET /system_stats once its custom nodes are loaded; the first boot may also
# be downloading models, hence the long start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 \
    CMD ["/bin/bash", "/opt/worker/scripts/start.sh", "healthcheck"]
# SIGTERM: tini passes it to the whole group (-g); ComfyUI and the RunPod SDK both stop cleanly
# on it, and start.sh forwards it while it is still in charge.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/worker/scripts/start.sh"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS runtime-compute

# git for ComfyUI-Manager and runtime-init.sh; JupyterLab beside ComfyUI (token required).
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends git; \
    rm -rf /var/lib/apt/lists/*; \
    git --version
# Installed as root, then only the new (root-owned) files are handed to comfy: a chown -R of
# the whole venv would copy gigabytes into this layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eux; \
    python -m pip install "jupyterlab>=4.4,<5"; \
    find /opt/venv -user root -exec chown -h comfy:comfy {} +; \
    jupyter lab --version
# The image already holds everything runtime-init.sh would install: mark it so the first boot
# skips straight to ComfyUI.
RUN set -eux; \
    WORKER_MODE=compute /opt/worker/scripts/runtime-init.sh --record; \
    chown -R comfy:comfy /comfyui/.provision
ENV WORKER_MODE=compute
EXPOSE 8188 8189
CMD ["compute"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS runtime-serverless

ENV WORKER_MODE=serverless
# 8000 answers only with SERVE_API_LOCALLY=true (RunPod's local API for docker run).
EXPOSE 8000
CMD ["serverless"]

# ---------------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM runtime-${BUILD_MODE} AS final
