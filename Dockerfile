# syntax=docker/dockerfile:1.7
#
# One image, two modes, chosen by the build arg BUILD_MODE:
#   compute    (tag :latest)      ComfyUI in the foreground on 0.0.0.0:8188, JupyterLab on 8189,
#                                 ComfyUI-Manager
#   serverless (tag :serverless)  ComfyUI on 127.0.0.1:8188, then the RunPod handler
#
#   scripts/build-image.sh                      both images, with docker buildx or buildah
#   docker build --build-arg BUILD_MODE=serverless -t comfy-worker:serverless .
#
# Everything installed comes from manifest.toml through `python -m provision`; docs/container.md
# describes every build arg and the layers.
#
# Layers, slowest and largest first, so that an edit rebuilds (and every RunPod host re-pulls)
# only what it touches:
#   base (OS, Python, compilers for Triton, user)  ->  torch  ->  ComfyUI source  ->  ComfyUI's
#   requirements  ->  custom nodes  ->  their requirements and packages  ->  the worker's
#   dependencies  ->  baked models  ->  the worker's code (kilobytes)  [->  compute extras]
# Each of those reads only its own part of the manifest (`provision layers`), so a model entry,
# README.md or handler/ edit leaves the torch, ComfyUI and node layers as they were.

# A plain OS: the torch wheels bring their own CUDA 12.8 and cuDNN libraries, so a CUDA base
# image would only ship them twice (~3 GB). The NVIDIA runtime mounts the driver (libcuda) by
# the variables set below. Any Debian or Ubuntu root works: scripts/build-image.sh uses a
# debootstrapped Debian where no registry can be reached.
ARG CUDA_IMAGE=ubuntu:24.04
ARG BUILD_MODE=serverless

# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# NVIDIA_REQUIRE_CUDA makes the NVIDIA runtime refuse a host whose driver is older than CUDA
# 12.8 at container start, with that message, instead of a cryptic torch error at the first job
# (what nvidia/cuda images do). RunPod's endpoint setting "CUDA versions" avoids such hosts.
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=12.8"

# tini is PID 1 and passes signals to the whole process group (-g). libgl1 and libglib2.0-0 are
# what opencv-based custom nodes need at import time. gcc, libc6-dev and the Python headers stay
# in the image: Triton (SageAttention, torch.compile) compiles a small C launcher at first use
# and fails with "Failed to find C compiler" without them. (The full build-essential is for pods.)
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        gcc \
        libc6-dev \
        libgl1 \
        libglib2.0-0 \
        python3 \
        python3-dev \
        python3-venv \
        tini \
    ; \
    rm -rf /var/lib/apt/lists/*; \
    tini --version; \
    python3 --version; \
    gcc --version | head -n 1

# The unprivileged user everything runs as (uid 1000, which Ubuntu's images give to "ubuntu").
# It owns the venv, so every pip install below runs as it and no chown copies gigabytes.
RUN set -eux; \
    if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi; \
    groupadd --gid 1000 comfy; \
    useradd --uid 1000 --gid comfy --create-home --shell /bin/bash comfy; \
    python3 -m venv "$VIRTUAL_ENV"; \
    chown -R comfy:comfy "$VIRTUAL_ENV"; \
    python --version

# ---------------------------------------------------------------------------------------------
# The manifest cut into one input per layer (provision/layers.py). This stage re-runs on any
# manifest or provision edit; the layers below only see their own file, which does not change.
FROM base AS manifest

WORKDIR /opt/worker
COPY manifest.toml pyproject.toml ./
COPY provision ./provision
ARG NODE_GROUPS=ALL
ARG BAKE_MODELS=""
ARG TORCH_INDEX_URL=""
RUN set -eux; \
    python3 -m provision --manifest manifest.toml layers --out /layers --pyproject pyproject.toml \
        --node-groups "$NODE_GROUPS" --bake "$BAKE_MODELS" --torch-index-url "$TORCH_INDEX_URL"; \
    find /layers -type f

# ---------------------------------------------------------------------------------------------
# ComfyUI and the custom nodes at their pins: cloned, or copied from SOURCES_DIR (which
# scripts/build-image.sh puts into the build context as .sources/) for air-gapped builds.
FROM base AS sources

# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends git; \
    rm -rf /var/lib/apt/lists/*; \
    git --version
COPY provision /opt/worker/provision
COPY --from=manifest /layers/sources /layers/sources
COPY .sources/ /sources/
# COMFYUI_VERSION overrides the manifest's ComfyUI ref (a tag, branch or commit).
ARG COMFYUI_VERSION=""
WORKDIR /opt/worker
RUN set -eux; \
    python3 -m provision sources /layers/sources/comfyui.json --dest /src/comfyui --sources-dir /sources \
        --ref "$COMFYUI_VERSION"; \
    python3 -m provision sources /layers/sources/nodes.json --dest /src/nodes --sources-dir /sources; \
    python3 -m provision sources /layers/sources/compute.json --dest /src/compute --sources-dir /sources

# ---------------------------------------------------------------------------------------------
# Models baked into the image (BAKE_MODELS=GAUSSIAN; default: none, downloaded at boot or kept
# on a network volume). Only the baked groups' entries reach this stage, so other manifest edits
# never re-download them. A gated model needs a token, as a secret that stays out of every layer:
#   --secret id=hf_token,env=HF_TOKEN
FROM base AS models

COPY provision /opt/worker/provision
COPY --from=manifest /layers/models/manifest.toml /opt/build/models.toml
ARG BAKE_MODELS=""
ARG DOWNLOAD_REQUIRE_SHA256=false
WORKDIR /opt/worker
RUN --mount=type=secret,id=hf_token,required=false \
    set -eux; \
    mkdir -p /comfyui/models; \
    if [ -n "$BAKE_MODELS" ]; then \
        if [ -s /run/secrets/hf_token ]; then export HF_TOKEN_FILE=/run/secrets/hf_token; fi; \
        DOWNLOAD_REQUIRE_SHA256="$DOWNLOAD_REQUIRE_SHA256" COMFYUI_PATH=/comfyui \
            python3 -m provision --manifest /opt/build/models.toml download --groups "$BAKE_MODELS" \
                --root /comfyui/models; \
    fi

# ---------------------------------------------------------------------------------------------
# Everything both images share below the worker's code: torch, ComfyUI, the nodes, the worker's
# dependencies and the baked models.
FROM base AS deps

# Every pip install runs as the worker user into its venv. A machine behind a TLS-inspecting
# proxy hands its CA bundle in as the secret pip_cert (build-image.sh does, from SSL_CERT_FILE).
USER 1000:1000

# PyTorch: the largest layer and the one that changes least.
COPY --from=manifest /layers/torch /opt/build/torch
RUN --mount=type=cache,target=/home/comfy/.cache/pip,uid=1000,gid=1000 \
    --mount=type=secret,id=pip_cert,uid=1000,required=false \
    set -eux; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    index="$(cat /opt/build/torch/index-url)"; \
    if [ "$index" = default ]; then set --; else set -- --index-url "$index"; fi; \
    pip install "$@" -r /opt/build/torch/requirements.txt; \
    python -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda)'

# ComfyUI's source, then its requirements (torch pinned by the constraints). Each part's small
# /opt/build input comes first, so scripts/image_layers.py can tell the parts apart.
COPY --from=manifest /layers/constraints.txt /opt/build/constraints.txt
COPY --from=sources --chown=comfy:comfy /src/comfyui/ /comfyui/
RUN --mount=type=cache,target=/home/comfy/.cache/pip,uid=1000,gid=1000 \
    --mount=type=secret,id=pip_cert,uid=1000,required=false \
    set -eux; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    pip install -r /comfyui/requirements.txt -c /opt/build/constraints.txt; \
    PYTHONPATH=/comfyui python -c 'import comfyui_version; print("ComfyUI", comfyui_version.__version__)'

# The custom nodes, then their requirements and the manifest's pip packages (SageAttention).
COPY --from=manifest /layers/nodes /opt/build/nodes
COPY --from=manifest /layers/packages /opt/build/packages
COPY --from=sources --chown=comfy:comfy /src/nodes/ /comfyui/
RUN --mount=type=cache,target=/home/comfy/.cache/pip,uid=1000,gid=1000 \
    --mount=type=secret,id=pip_cert,uid=1000,required=false \
    set -eux; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    cat /opt/build/nodes/requirements.txt /opt/build/packages/requirements.txt >/tmp/extra.txt; \
    if [ -s /tmp/extra.txt ]; then pip install -r /tmp/extra.txt -c /opt/build/constraints.txt; fi; \
    rm /tmp/extra.txt; \
    python -m pip check || echo "pip check reports conflicts above (custom nodes pin loosely); not fatal"

# The worker's dependencies (pyproject.toml's ranges), apart from its code.
COPY --from=manifest /layers/worker /opt/build/worker
RUN --mount=type=cache,target=/home/comfy/.cache/pip,uid=1000,gid=1000 \
    --mount=type=secret,id=pip_cert,uid=1000,required=false \
    set -eux; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    pip install -r /opt/build/worker/requirements.txt -c /opt/build/constraints.txt; \
    python -m pip check || echo "pip check: the worker's dependencies conflict with a node's (above); not fatal"; \
    python -c 'import runpod; print("runpod", runpod.__version__)'

COPY --from=models --chown=comfy:comfy /comfyui/models /comfyui/models

# ---------------------------------------------------------------------------------------------
# What only a pod gets, below the worker's code too, so a code edit re-sends kilobytes to pods as
# well: compilers and git (ComfyUI-Manager, nodes whose requirements have no wheel), the pod-only
# nodes (ComfyUI-Manager) with their requirements, and JupyterLab (token required).
FROM deps AS extras-compute

# hadolint ignore=DL3002
USER 0:0
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends build-essential git; \
    rm -rf /var/lib/apt/lists/*; \
    git --version
COPY --from=manifest /layers/compute /opt/build/compute
COPY --from=sources --chown=comfy:comfy /src/compute/ /comfyui/
USER 1000:1000
RUN --mount=type=cache,target=/home/comfy/.cache/pip,uid=1000,gid=1000 \
    --mount=type=secret,id=pip_cert,uid=1000,required=false \
    set -eux; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    pip install "jupyterlab>=4.4,<5" -r /opt/build/compute/requirements.txt -c /opt/build/constraints.txt; \
    jupyter lab --version

FROM deps AS extras-serverless

# ---------------------------------------------------------------------------------------------
# The worker's code on top of the mode's extras (FROM with the build arg picks them).
# hadolint ignore=DL3006
FROM extras-${BUILD_MODE} AS runtime

# The worker's own files, root-owned: the user runs them but cannot change them. Kilobytes, and
# the only layers a code change touches. The container starts as root on purpose: start.sh hands
# the volume's model folders to the worker user, then drops to it (RUN_AS_ROOT=true keeps root).
# hadolint ignore=DL3002
USER 0:0
COPY manifest.toml /opt/worker/manifest.toml
COPY provision /opt/worker/provision
COPY scripts /opt/worker/scripts
COPY extra_model_paths.yaml /comfyui/extra_model_paths.yaml
COPY handler /opt/worker/handler
# The client and `comfy-worker` CLI only: .dockerignore leaves out comfy_worker/endpoint (the local
# RunPod emulator, a development tool; `comfy-worker serve` says so here).
COPY comfy_worker /opt/worker/comfy_worker

ARG BUILD_MODE
ARG CUDA_IMAGE
ARG COMFYUI_VERSION=""
ARG NODE_GROUPS=ALL
ARG BAKE_MODELS=""
ARG VCS_REF=unknown
# /opt/worker goes on the venv's path (a .pth file) instead of a pip install, which would copy
# the code into the venv. Baked models are restamped so boots skip hashing them. The node
# classes this image provides are recorded (/comfyui/.provision/node_classes.json, for
# `comfy-worker check --node-list`). BUILD_INFO tells runtime-init and the image test which image
# this is.
RUN set -eux; \
    site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    echo /opt/worker >"$site/comfy_serverless_worker.pth"; \
    printf '#!/opt/venv/bin/python\nimport sys\nfrom comfy_worker.cli import main\nsys.exit(main())\n' \
        >/opt/venv/bin/comfy-worker; \
    chmod 0755 /opt/venv/bin/comfy-worker /opt/worker/scripts/*.sh; \
    python -m provision restamp --root /comfyui/models; \
    python -m provision record-nodes --comfyui /comfyui --mode serverless; \
    printf 'build_mode=%s\ncomfyui_version=%s\nnode_groups=%s\nbake_models=%s\nvcs_ref=%s\n' \
        "$BUILD_MODE" "$COMFYUI_VERSION" "$NODE_GROUPS" "$BAKE_MODELS" "$VCS_REF" >/opt/worker/BUILD_INFO; \
    cat /comfyui/.provision/sources-*.json >>/opt/worker/BUILD_INFO; \
    bash -n /opt/worker/scripts/start.sh; \
    python -c 'import handler.worker, comfy_worker.cli; print("handler ok")'

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

# The image already holds everything runtime-init.sh would install: mark it so the first boot
# skips straight to ComfyUI.
RUN set -eux; \
    cat /comfyui/.provision/sources-compute.json >>/opt/worker/BUILD_INFO; \
    python -m provision record-nodes --comfyui /comfyui --mode compute; \
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
