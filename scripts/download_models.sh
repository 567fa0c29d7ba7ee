#!/bin/bash
# Download the manifest's enabled model groups: in parallel, resumable, sha256-verified, retried
# with backoff, idempotent (a verified file is skipped; a partial one is resumed, never trusted).
#
# Usage:
#   download_models.sh                      the groups enabled by DOWNLOAD_ALL / DOWNLOAD_<GROUP>=true
#   download_models.sh --groups GAUSSIAN    these groups (ALL: every group), whatever the flags say
#   download_models.sh plan [--groups ...]  print what would be downloaded, where, and how it is checked
#   download_models.sh volume [--groups ALL] [--volume DIR]
#                                           fill a network volume (/runpod-volume or /workspace) once,
#                                           so every worker using it downloads nothing (docs/models.md)
#
# A failed model (checksum mismatch, 404, no space...) does not stop the boot: it is listed in
# the models status file ($MODELS_STATUS_FILE, default $COMFYUI_PATH/.provision/models-status.json)
# and jobs that need it fail with MODEL_MISSING. DOWNLOAD_STRICT=true makes it stop the boot.
#
# Where: MODELS_ROOT, else /runpod-volume/models, else /workspace/models, else $COMFYUI_PATH/models.
# Also: HF_TOKEN or HF_TOKEN_FILE, DOWNLOAD_CONCURRENCY=4 (files at once), DOWNLOAD_CONNECTIONS=8
# (connections per file of at least DOWNLOAD_SPLIT_MIN_MIB=64), DOWNLOAD_RETRIES=5,
# DOWNLOAD_REQUIRE_SHA256=false, DOWNLOAD_TIMEOUT_S=30 (docs/container.md, "Environment").
# The work is done by `python -m provision download` (standard library only).
set -Eeuo pipefail

WORKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Variables named DOWNLOAD_* that are settings, not groups.
DOWNLOAD_SETTINGS=(DOWNLOAD_ALL DOWNLOAD_CONCURRENCY DOWNLOAD_CONNECTIONS DOWNLOAD_SPLIT_MIN_MIB
	DOWNLOAD_RETRIES DOWNLOAD_REQUIRE_SHA256 DOWNLOAD_STRICT DOWNLOAD_TIMEOUT_S DOWNLOAD_PROGRESS_INTERVAL_S)

# Exit 0 when DOWNLOAD_ALL or some DOWNLOAD_<GROUP> is true: download_any_enabled
# Checked here so a boot with no flags costs no Python start.
download_any_enabled() {
	local name value
	for name in $(compgen -e); do
		[[ "$name" == DOWNLOAD_* ]] || continue
		if [[ "$name" != DOWNLOAD_ALL && " ${DOWNLOAD_SETTINGS[*]} " == *" $name "* ]]; then
			continue
		fi
		value="${!name,,}"
		case "$value" in
			true | 1 | yes | on) return 0 ;;
		esac
	done
	return 1
}

_is_sourced() {
	# https://unix.stackexchange.com/a/215279
	[[ "${#FUNCNAME[@]}" -ge 2 && "${FUNCNAME[0]}" == '_is_sourced' && "${FUNCNAME[1]}" == 'source' ]]
}

# Exit 0 when DOWNLOAD_STRICT is true: download_strict
download_strict() {
	case "${DOWNLOAD_STRICT:-false}" in
		true | 1 | yes | on) return 0 ;;
	esac
	return 1
}

_main() {
	local command=download
	if [[ "${1:-}" == plan || "${1:-}" == volume ]]; then
		command="$1"
		shift
	fi
	if [[ "$command" == download && $# -eq 0 ]] && ! download_any_enabled; then
		# Nothing downloaded this boot, so nothing is missing: no status from an earlier boot.
		rm -f "${MODELS_STATUS_FILE:-${COMFYUI_PATH:-/comfyui}/.provision/models-status.json}"
		printf '[models] no model group enabled; set DOWNLOAD_ALL=true or DOWNLOAD_<GROUP>=true\n' >&2
		return 0
	fi
	if [[ "$command" == download ]] && ! download_strict; then
		set -- --keep-going "$@"
	fi
	export PYTHONPATH="$WORKER_DIR${PYTHONPATH:+:$PYTHONPATH}"
	exec "${PYTHON:-python}" -m provision "$command" "$@"
}

if ! _is_sourced; then
	_main "$@"
fi
