#!/bin/bash
# The compute pod's boot-time installer: whatever the image lacks, from manifest.toml.
#   - ComfyUI, when COMFYUI_PATH has none (a plain pod, or COMFYUI_PATH=/workspace/ComfyUI),
#     or its newest release when COMFYUI_USE_LATEST=true
#   - PyTorch, when `import torch` fails
#   - the manifest's custom nodes at their pinned commits, and its pip packages (SageAttention)
# Every step is idempotent, and a marker skips them all on later boots while nothing changed.
#
# Usage:
#   runtime-init.sh           install what is missing (skipped when the marker matches)
#   runtime-init.sh --force   ignore the marker
#   runtime-init.sh --record  only write the marker (the Dockerfile, after installing it all)
#
# The marker lives with the installation it vouches for: $COMFYUI_PATH/.provision/runtime-init.done,
# so with COMFYUI_PATH on /workspace it persists across pod restarts, and a marker never outlives
# what it describes. RUNTIME_INIT_MARKER overrides the path. Serverless images never run this:
# they install everything at build time.
set -Eeuo pipefail

WORKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB_TAG=runtime-init
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

init_log() {
	printf '[runtime-init] %s\n' "$*"
}

init_error() {
	printf '[runtime-init] error: %s\n' "$@" >&2
}

# Give each setting its default: init_setup_env
init_setup_env() {
	: "${COMFYUI_PATH:=/comfyui}"
	: "${PYTHON:=python}"
	: "${NODE_GROUPS:=ALL}"
	: "${COMFYUI_USE_LATEST:=false}"
	: "${PROVISION_MANIFEST:=$WORKER_DIR/manifest.toml}"
	: "${RUNTIME_INIT_MARKER:=$COMFYUI_PATH/.provision/runtime-init.done}"
	: "${WORKER_BUILD_INFO:=$WORKER_DIR/BUILD_INFO}"
	export COMFYUI_PATH PROVISION_MANIFEST
	export PYTHONPATH="$WORKER_DIR${PYTHONPATH:+:$PYTHONPATH}"
	lib_bool COMFYUI_USE_LATEST false || return 1
	COMFYUI_USE_LATEST="$REPLY"
	if [[ ! -r "$PROVISION_MANIFEST" ]]; then
		init_error "no manifest at PROVISION_MANIFEST=$PROVISION_MANIFEST"
		return 1
	fi
}

# What this run would install, as one hash, in REPLY: the manifest, the flags, the image.
# A different image (BUILD_INFO), manifest or flag means the marker no longer applies.
init_fingerprint() {
	local build_info=""
	[[ -r "$WORKER_BUILD_INFO" ]] && build_info="$(<"$WORKER_BUILD_INFO")"
	REPLY="$(
		{
			cat "$PROVISION_MANIFEST"
			printf 'COMFYUI_USE_LATEST=%s\nNODE_GROUPS=%s\nCOMFYUI_PATH=%s\n%s\n' \
				"$COMFYUI_USE_LATEST" "$NODE_GROUPS" "$COMFYUI_PATH" "$build_info"
		} | sha256sum
	)"
	REPLY="${REPLY%% *}"
}

# Exit 0 when the marker records this fingerprint: init_marker_matches FINGERPRINT
init_marker_matches() {
	[[ -r "$RUNTIME_INIT_MARKER" && "$(<"$RUNTIME_INIT_MARKER")" == "$1" ]]
}

# Write the marker atomically: init_write_marker FINGERPRINT
init_write_marker() {
	mkdir -p "$(dirname "$RUNTIME_INIT_MARKER")"
	printf '%s\n' "$1" >"$RUNTIME_INIT_MARKER.tmp"
	mv -f "$RUNTIME_INIT_MARKER.tmp" "$RUNTIME_INIT_MARKER"
}

# Run `python -m provision ARGS...`: init_provision install nodes --groups ALL
init_provision() {
	"$PYTHON" -m provision "$@"
}

# Install whatever is missing; every step is safe to repeat.
init_install() {
	if [[ "$COMFYUI_USE_LATEST" == true ]]; then
		init_log "COMFYUI_USE_LATEST=true: moving ComfyUI to its newest release"
		init_provision install comfyui --dest "$COMFYUI_PATH" --version latest
	elif [[ ! -f "$COMFYUI_PATH/main.py" ]]; then
		init_log "no ComfyUI in $COMFYUI_PATH: installing the manifest's version"
		init_provision install comfyui --dest "$COMFYUI_PATH"
	fi
	if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
		init_log "PyTorch is missing: installing the manifest's build"
		init_provision install torch
	fi
	init_provision install nodes --dest "$COMFYUI_PATH" --groups "$NODE_GROUPS"
	init_provision install packages --groups "$NODE_GROUPS"
}

# Usage: main [--force|--record]
main() {
	local option="${1:-}" fingerprint
	if [[ "${WORKER_MODE:-compute}" == serverless && "$option" != --record ]]; then
		init_error "runtime-init.sh is for compute pods" \
			"a serverless image installs everything at build time and must not install at boot"
		return 1
	fi
	init_setup_env
	init_fingerprint
	fingerprint="$REPLY"
	case "$option" in
		--record)
			init_write_marker "$fingerprint"
			init_log "marker written: $RUNTIME_INIT_MARKER"
			return 0
			;;
		--force | '') ;;
		*)
			init_error "unknown option $option" "usage: runtime-init.sh [--force|--record]"
			return 2
			;;
	esac
	if [[ "$option" != --force ]] && init_marker_matches "$fingerprint"; then
		init_log "nothing to do (marker $RUNTIME_INIT_MARKER matches; --force to run anyway)"
		return 0
	fi
	init_install
	init_write_marker "$fingerprint"
	init_log "done; marker written to $RUNTIME_INIT_MARKER"
}

lib_is_sourced || main "$@"
