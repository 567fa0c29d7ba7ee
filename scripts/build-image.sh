#!/bin/bash
# Build the images: IMAGE_NAME:serverless and IMAGE_NAME:latest (compute), with docker buildx
# when a Docker daemon answers, otherwise with buildah (Debian's package; rootful, chroot
# isolation, so it works where containers cannot be started the usual way). The build cache is
# kept between runs by either engine.
#
# Usage:
#   build-image.sh [serverless|compute|both]        default: both
#   SOURCES_DIR=~/sources build-image.sh            air-gapped: no git clone at all
#   CUDA_IMAGE=debian-stand-in TORCH_INDEX_URL=default SOURCES_DIR=... build-image.sh
#
# Environment:
#   IMAGE_NAME=comfy-worker   tags IMAGE_NAME:serverless and IMAGE_NAME:latest
#   BUILDER=auto              docker | buildah | auto (docker when `docker info` answers)
#   SOURCES_DIR=              one plain source tree per manifest entry, named as in the manifest
#                             (DIR/ComfyUI, DIR/ComfyUI-Sharp, ...); scripts/export-sources.sh
#                             makes them from any git directory
#   CUDA_IMAGE=               the base image (Dockerfile default: ubuntu:24.04); the value
#                             debian-stand-in debootstraps a Debian bookworm root once and
#                             imports it (buildah only; for machines that cannot pull images)
#   TORCH_INDEX_URL=          torch's wheel index; "default" = pip's own (PyPI), for machines
#                             that cannot reach the PyTorch index. The build prints the CUDA
#                             build it got.
#   PIP_CERT_FILE=$SSL_CERT_FILE  a CA bundle for pip inside the build (TLS-inspecting
#                             proxies), handed in as the build secret pip_cert
#   HF_TOKEN / HF_TOKEN_FILE  for BAKE_MODELS with gated models (a build secret)
#   BAKE_MODELS= NODE_GROUPS=ALL COMFYUI_VERSION= VCS_REF=(git HEAD)   build args, as in the Dockerfile
#   BUILD_LOG_DIR=            also write each build's output to DIR/build-<mode>.log
set -Eeuo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPTS_DIR/lib.sh"
LIB_TAG=build-image
STAND_IN_IMAGE=localhost/comfy-worker-base:debian-bookworm

# Defaults and checks: build_setup_env
build_setup_env() {
	: "${IMAGE_NAME:=comfy-worker}"
	: "${BUILDER:=auto}"
	: "${SOURCES_DIR:=}"
	: "${CUDA_IMAGE:=}"
	: "${TORCH_INDEX_URL:=}"
	: "${PIP_CERT_FILE:=${SSL_CERT_FILE:-}}"
	: "${BAKE_MODELS:=}"
	: "${NODE_GROUPS:=ALL}"
	: "${COMFYUI_VERSION:=}"
	: "${BUILD_LOG_DIR:=}"
	: "${CONTEXT_DIR:=$(cd "$SCRIPTS_DIR/.." && pwd)}"
	if [[ -z "${VCS_REF:-}" ]]; then
		VCS_REF="$(git -C "$CONTEXT_DIR" rev-parse HEAD 2>/dev/null || echo unknown)"
	fi
	if [[ -n "$SOURCES_DIR" && ! -d "$SOURCES_DIR" ]]; then
		lib_error "SOURCES_DIR=$SOURCES_DIR is not a folder" \
			"point it at a folder holding one source tree per manifest entry (DIR/ComfyUI, DIR/ComfyUI-Sharp, ...)"
		return 1
	fi
	if [[ -n "$PIP_CERT_FILE" && ! -r "$PIP_CERT_FILE" ]]; then
		lib_error "PIP_CERT_FILE=$PIP_CERT_FILE cannot be read" "point it at a PEM CA bundle, or set it empty"
		return 1
	fi
}

# The engine to use, in BUILD_ENGINE: build_detect_engine
build_detect_engine() {
	case "$BUILDER" in
		docker | buildah) BUILD_ENGINE="$BUILDER" ;;
		auto)
			if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
				BUILD_ENGINE=docker
			elif command -v buildah >/dev/null 2>&1; then
				BUILD_ENGINE=buildah
			else
				lib_error "no image builder: no Docker daemon answers and buildah is not installed" \
					"start Docker, or install buildah (Debian/Ubuntu: apt-get install buildah)"
				return 1
			fi
			;;
		*)
			lib_error "BUILDER=$BUILDER is not docker, buildah or auto" "example: BUILDER=buildah"
			return 1
			;;
	esac
	if ! command -v "$BUILD_ENGINE" >/dev/null 2>&1; then
		lib_error "BUILDER=$BUILD_ENGINE but $BUILD_ENGINE is not installed" "install it or set BUILDER=auto"
		return 1
	fi
}

# A Debian bookworm root made with debootstrap and imported as STAND_IN_IMAGE, once (buildah).
# For machines that cannot pull any registry image; DEBIAN_MIRROR picks the mirror.
build_stand_in_base() {
	if buildah inspect --type image "$STAND_IN_IMAGE" >/dev/null 2>&1; then
		lib_log "base: $STAND_IN_IMAGE (already there)"
		return 0
	fi
	if ! command -v debootstrap >/dev/null 2>&1; then
		lib_error "CUDA_IMAGE=debian-stand-in needs debootstrap" "apt-get install debootstrap"
		return 1
	fi
	local work container
	work="$(mktemp -d)"
	lib_log "base: debootstrapping Debian bookworm into $work (a few minutes, once)"
	# shellcheck disable=SC2086 # DEBIAN_MIRROR is one optional word
	debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" ${DEBIAN_MIRROR:-} >&2
	tar -C "$work/root" -czf "$work/root.tar.gz" .
	container="$(buildah from scratch)"
	buildah add "$container" "$work/root.tar.gz" / >/dev/null
	buildah config --cmd /bin/bash "$container"
	buildah commit --quiet "$container" "$STAND_IN_IMAGE" >/dev/null
	buildah rm "$container" >/dev/null
	rm -rf "$work"
	lib_log "base: $STAND_IN_IMAGE imported"
}

# Put SOURCES_DIR's trees into the build context's .sources/ (emptied first, so a build without
# SOURCES_DIR clones). Trees that are not manifest entries are copied too and simply unused.
build_stage_sources() {
	local staged="$CONTEXT_DIR/.sources" tree
	find "$staged" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	[[ -n "$SOURCES_DIR" ]] || return 0
	for tree in "$SOURCES_DIR"/*/; do
		[[ -d "$tree" ]] || continue
		cp -a "${tree%/}" "$staged/"
		lib_log "sources: $(basename "$tree") from $tree (commit $(cat "$tree/.source-commit" 2>/dev/null || echo unrecorded))"
	done
}

# The engine's command line for MODE, in BUILD_CMD: build_command serverless
build_command() {
	local mode="$1" tag
	tag="$(build_tag "$mode")"
	local args=(
		--build-arg "BUILD_MODE=$mode"
		--build-arg "NODE_GROUPS=$NODE_GROUPS"
		--build-arg "BAKE_MODELS=$BAKE_MODELS"
		--build-arg "COMFYUI_VERSION=$COMFYUI_VERSION"
		--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL"
		--build-arg "VCS_REF=$VCS_REF"
		--tag "$tag"
	)
	if [[ -n "$CUDA_IMAGE" ]]; then
		args+=(--build-arg "CUDA_IMAGE=$CUDA_IMAGE")
	fi
	if [[ -n "$PIP_CERT_FILE" ]]; then
		args+=(--secret "id=pip_cert,src=$PIP_CERT_FILE")
	fi
	if [[ -n "${HF_TOKEN_FILE:-}" ]]; then
		args+=(--secret "id=hf_token,src=$HF_TOKEN_FILE")
	elif [[ -n "${HF_TOKEN:-}" ]]; then
		args+=(--secret "id=hf_token,env=HF_TOKEN")
	fi
	if [[ "$BUILD_ENGINE" == docker ]]; then
		BUILD_CMD=(docker buildx build --load "${args[@]}" "$CONTEXT_DIR")
	else
		# --layers keeps the cache between runs; docker format keeps HEALTHCHECK and STOPSIGNAL.
		BUILD_CMD=(buildah bud --isolation chroot --network host --layers --format docker "${args[@]}" "$CONTEXT_DIR")
	fi
}

# The tag of MODE's image: build_tag compute -> comfy-worker:latest
build_tag() {
	if [[ "$1" == compute ]]; then
		printf '%s:latest' "$IMAGE_NAME"
	else
		printf '%s:serverless' "$IMAGE_NAME"
	fi
}

# Build MODE and say how long it took: build_one serverless
build_one() {
	local mode="$1" started status=0
	build_command "$mode"
	lib_log "building $mode: ${BUILD_CMD[*]}"
	started="$(date +%s)"
	if [[ -n "$BUILD_LOG_DIR" ]]; then
		mkdir -p "$BUILD_LOG_DIR"
		"${BUILD_CMD[@]}" 2>&1 | tee "$BUILD_LOG_DIR/build-$mode.log" || status=$?
	else
		"${BUILD_CMD[@]}" || status=$?
	fi
	if ((status != 0)); then
		lib_error "the $mode build failed (status $status; the step's output is above)" \
			"a pip step that finds no versions behind a proxy needs PIP_CERT_FILE; no GitHub: SOURCES_DIR"
		return "$status"
	fi
	lib_log "built $(build_tag "$mode") in $(($(date +%s) - started)) s"
}

main() {
	local target="${1:-both}" mode
	lib_modes "$target" build-image.sh || return
	build_setup_env
	build_detect_engine
	if [[ "$CUDA_IMAGE" == debian-stand-in ]]; then
		if [[ "$BUILD_ENGINE" != buildah ]]; then
			lib_error "CUDA_IMAGE=debian-stand-in needs buildah" "with Docker, leave CUDA_IMAGE unset (ubuntu:24.04)"
			return 1
		fi
		build_stand_in_base
		CUDA_IMAGE="$STAND_IN_IMAGE"
	fi
	trap 'build_stage_sources_clear' EXIT
	build_stage_sources
	for mode in "${MODES[@]}"; do
		build_one "$mode"
	done
	lib_log "done: ${MODES[*]}; check them with scripts/test-image.sh ${target}"
}

# The copied sources leave the build context once the build is over.
build_stage_sources_clear() {
	SOURCES_DIR="" build_stage_sources
}

if ! lib_is_sourced; then
	main "$@"
fi
