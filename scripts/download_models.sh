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
LIB_TAG=models
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Variables named DOWNLOAD_* that are settings, not groups.
DOWNLOAD_SETTINGS=(DOWNLOAD_ALL DOWNLOAD_CONCURRENCY DOWNLOAD_CONNECTIONS DOWNLOAD_SPLIT_MIN_MIB
	DOWNLOAD_RETRIES DOWNLOAD_REQUIRE_SHA256 DOWNLOAD_STRICT DOWNLOAD_TIMEOUT_S DOWNLOAD_PROGRESS_INTERVAL_S)

# Exit 0 when DOWNLOAD_ALL or some DOWNLOAD_<GROUP> is true, 1 when none is, 2 when a flag is
# not a boolean (lib_bool names it): download_any_enabled
# Checked here so a boot with no flags costs no Python start.
download_any_enabled() {
	local name enabled=1
	for name in $(compgen -e); do
		[[ "$name" == DOWNLOAD_* ]] || continue
		if [[ "$name" != DOWNLOAD_ALL && " ${DOWNLOAD_SETTINGS[*]} " == *" $name "* ]]; then
			continue
		fi
		lib_bool "$name" false || return 2
		[[ "$REPLY" == true ]] && enabled=0
	done
	return "$enabled"
}

# Usage: main [plan|volume] [--groups ...] [--volume DIR] (see the top of this file)
main() {
	local command=download
	if [[ "${1:-}" == plan || "${1:-}" == volume ]]; then
		command="$1"
		shift
	fi
	local enabled=0
	if [[ "$command" == download && $# -eq 0 ]]; then
		download_any_enabled || enabled=$?
		((enabled != 2)) || return 1
	fi
	if ((enabled == 1)); then
		# Nothing downloaded this boot, so nothing is missing: no status from an earlier boot.
		rm -f "${MODELS_STATUS_FILE:-${COMFYUI_PATH:-/comfyui}/.provision/models-status.json}"
		printf '[models] no model group enabled; set DOWNLOAD_ALL=true or DOWNLOAD_<GROUP>=true\n' >&2
		return 0
	fi
	lib_bool DOWNLOAD_STRICT false || return 1
	if [[ "$command" == download && "$REPLY" == false ]]; then
		set -- --keep-going "$@"
	fi
	export PYTHONPATH="$WORKER_DIR${PYTHONPATH:+:$PYTHONPATH}"
	exec "${PYTHON:-python}" -m provision "$command" "$@"
}

lib_is_sourced || main "$@"
