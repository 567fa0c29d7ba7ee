#!/bin/bash
# Boot the built images and check them, the checks running inside the containers
# (scripts/image_probe.py, shipped in the image):
#   serverless  network switched off, COMFY_ARGS=--cpu, SERVE_API_LOCALLY=true: the handler's API
#               answers, workflows/simple_test.json through /runsync is COMPLETED, every node
#               class of every installed node is in /object_info, no node failed to import.
#               The proof that the image needs no pip, git or download at boot.
#   compute     ComfyUI on 0.0.0.0:8188, JupyterLab on 8189 answering 403 without the token,
#               ComfyUI-Manager loaded; then again with RUN_AS_ROOT=true (JupyterLab as root).
# For each boot: every process but PID 1 (tini) runs as uid 1000; SIGTERM to PID 1 stops all of
# them within STOP_LIMIT_S; the boot time (container start -> handler accepting jobs, or ComfyUI
# ready on a pod); and the image's size per part and per layer.
#
# Usage:
#   test-image.sh [serverless|compute|both]        default: both
#
# Environment:
#   IMAGE_NAME=comfy-worker  BUILDER=auto (docker | buildah)  BOOT_TIMEOUT_S=600  STOP_LIMIT_S=10
#   WORKFLOW=workflows/simple_test.json   RESULTS_DIR=  (keep logs and probe results there)
#
# buildah runs each boot with chroot isolation inside a fresh network namespace (unshare -n)
# holding only loopback; Docker runs them with --network none.
set -Eeuo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPTS_DIR/lib.sh"
# shellcheck source=scripts/build-image.sh
source "$SCRIPTS_DIR/build-image.sh"
LIB_TAG=test-image
JUPYTER_TEST_TOKEN="image-test-token"

# Defaults: test_setup_env
test_setup_env() {
	: "${IMAGE_NAME:=comfy-worker}"
	: "${BUILDER:=auto}"
	: "${BOOT_TIMEOUT_S:=600}"
	: "${STOP_LIMIT_S:=10}"
	: "${WORKFLOW:=$SCRIPTS_DIR/../workflows/simple_test.json}"
	: "${RESULTS_DIR:=}"
	if [[ ! "$BOOT_TIMEOUT_S" =~ ^[0-9]+$ || ! "$STOP_LIMIT_S" =~ ^[0-9]+$ ]]; then
		lib_error "BOOT_TIMEOUT_S and STOP_LIMIT_S must be whole seconds" "example: BOOT_TIMEOUT_S=600"
		return 1
	fi
	if [[ ! -r "$WORKFLOW" ]]; then
		lib_error "WORKFLOW=$WORKFLOW cannot be read" "point it at an API-format workflow that needs no model"
		return 1
	fi
	if [[ -z "$RESULTS_DIR" ]]; then
		RESULTS_DIR="$(mktemp -d)"
	fi
	mkdir -p "$RESULTS_DIR"
	TEST_FAILURES=()
}

# Record a check: test_check NAME OK(true|false) [DETAIL]
test_check() {
	local name="$1" ok="$2" detail="${3:-}"
	if [[ "$ok" == true ]]; then
		printf 'ok   %s%s\n' "$name" "${detail:+: $detail}"
	else
		printf 'FAIL %s%s\n' "$name" "${detail:+: $detail}"
		TEST_FAILURES+=("$name${detail:+: $detail}")
	fi
}

# The environment of one boot, as NAME=VALUE words in BOOT_ENV: test_boot_env serverless [root]
test_boot_env() {
	local mode="$1" variant="${2:-}"
	BOOT_ENV=(COMFY_ARGS=--cpu COMFY_READY_TIMEOUT_S="$BOOT_TIMEOUT_S")
	if [[ "$mode" == serverless ]]; then
		BOOT_ENV+=(SERVE_API_LOCALLY=true RP_API_HOST=127.0.0.1)
	else
		BOOT_ENV+=(JUPYTER_TOKEN="$JUPYTER_TEST_TOKEN")
	fi
	if [[ "$variant" == root ]]; then
		BOOT_ENV+=(RUN_AS_ROOT=true)
	fi
}

# The processes of a container whose processes share the root directory ROOT, as
# "pid uid comm" lines in REPLY_PROCS: test_procs_with_root /proc/123/root-target
test_procs_with_root() {
	local root="$1" pid
	REPLY_PROCS=""
	for pid in /proc/[0-9]*; do
		pid="${pid#/proc/}"
		[[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$root" ]] || continue
		REPLY_PROCS+="$pid $(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) $(cat "/proc/$pid/comm" 2>/dev/null)"$'\n'
	done
}

# The newest process named NAME below ANCESTOR (any depth), in REPLY_PID (empty if none):
#   test_descendant_named 4242 tini
test_descendant_named() {
	local ancestor="$1" name="$2" pid parent
	REPLY_PID=""
	for pid in $(pgrep -x "$name" || :); do
		parent="$pid"
		while [[ -n "$parent" && "$parent" != 1 && "$parent" != 0 ]]; do
			parent="$(awk '/^PPid:/ {print $2}' "/proc/$parent/status" 2>/dev/null)"
			if [[ "$parent" == "$ancestor" ]]; then
				REPLY_PID="$pid"
			fi
		done
	done
}

# The processes below INIT_PID (any depth) and INIT_PID itself, as "pid uid comm" lines in
# REPLY_PROCS: test_procs_below 4242. (Not by root folder: with chroot isolation, buildah's own
# helper shares the container's root but is not in the container.)
test_procs_below() {
	local init_pid="$1" pid
	REPLY_PROCS="$(
		for pid in /proc/[0-9]*; do
			pid="${pid#/proc/}"
			awk -v pid="$pid" '/^PPid:/ {ppid = $2} /^Uid:/ {uid = $2} END {print pid, ppid, uid}' \
				"/proc/$pid/status" 2>/dev/null | tr '\n' ' '
			printf '%s\n' "$(cat "/proc/$pid/comm" 2>/dev/null)"
		done | awk -v root="$init_pid" '
			NF >= 4 { parent[$1] = $2; line[$1] = $1 " " $3 " " $4 }
			END {
				for (p in line) {
					q = p
					while (q != "" && q != root && q in parent) q = parent[q]
					if (q == root) print line[p]
				}
			}'
	)"
}

# Check that every process but INIT_PID runs as uid 1000 (or as root when VARIANT=root):
#   test_check_uids "$procs" 4242 [root]
test_check_uids() {
	local procs="$1" init_pid="$2" variant="${3:-}" want=1000 pid uid comm bad=""
	[[ "$variant" == root ]] && want=0
	while read -r pid uid comm; do
		[[ -n "$pid" && "$pid" != "$init_pid" ]] || continue
		[[ "$uid" == "$want" ]] || bad+="$comm(pid $pid, uid $uid) "
	done <<<"$procs"
	test_check "every process but PID 1 runs as uid $want" "$([[ -z "$bad" ]] && echo true || echo false)" \
		"${bad:-$(grep -c . <<<"$procs") processes}"
}

# --- buildah ------------------------------------------------------------------------------------

# Boot IMAGE in MODE inside this (already network-less) namespace and check it:
#   test_buildah_boot serverless comfy-worker:serverless [root]
test_buildah_boot() {
	local mode="$1" image="$2" variant="${3:-}" container runner init_pid="" root started status probe_status=0
	local log="$RESULTS_DIR/boot-$mode${variant:+-$variant}.log"
	container="$(buildah from --pull=false "$image")"
	buildah run --isolation chroot --network host "$container" -- mkdir -p /tmp/probe
	buildah copy "$container" "$WORKFLOW" /tmp/probe/simple_test.json >/dev/null
	test_boot_env "$mode" "$variant"
	started="$(date +%s.%N)"
	buildah run --isolation chroot --network host "$container" -- \
		/usr/bin/env "${BOOT_ENV[@]}" /usr/bin/tini -g -- /opt/worker/scripts/start.sh "$mode" >"$log" 2>&1 &
	runner=$!
	# PID 1 of the container is the tini the runner started.
	for _ in $(seq 100); do
		test_descendant_named "$runner" tini
		init_pid="$REPLY_PID"
		[[ -n "$init_pid" ]] && break
		sleep 0.1
	done
	if [[ -z "$init_pid" ]]; then
		test_check "$mode: the container starts" false "no tini under buildah run; see $log"
		buildah rm "$container" >/dev/null
		return 0
	fi
	root="$(readlink "/proc/$init_pid/root")"
	buildah run --isolation chroot --network host "$container" -- \
		python /opt/worker/scripts/image_probe.py "$mode" --started-at "$started" --timeout-s "$BOOT_TIMEOUT_S" \
		--jupyter-token "$JUPYTER_TEST_TOKEN" | tee "$RESULTS_DIR/probe-$mode${variant:+-$variant}.txt" ||
		probe_status=$?
	test_check "$mode${variant:+ ($variant)}: probe inside the container" \
		"$([[ "$probe_status" == 0 ]] && echo true || echo false)" "see the lines above; boot log $log"
	test_procs_below "$init_pid"
	test_check_uids "$REPLY_PROCS" "$init_pid" "$variant"
	test_stop "$init_pid" "$root"
	wait "$runner" || status=$?
	buildah rm "$container" >/dev/null
	if [[ -n "${REPLY_STOP_LEFT:-}" ]]; then
		local left
		read -ra left <<<"$REPLY_STOP_LEFT"
		kill -KILL "${left[@]}" 2>/dev/null || : # already reported; do not leave them behind
	fi
}

# SIGTERM to PID 1, then wait up to STOP_LIMIT_S for every process of the container to end; the
# processes still running are traced each second into RESULTS_DIR/stop.log:
#   test_stop INIT_PID ROOT
test_stop() {
	local init_pid="$1" root="$2" started elapsed next_trace=1
	started="$(date +%s.%N)"
	kill -TERM "$init_pid"
	REPLY_STOP_LEFT=""
	while :; do
		test_procs_with_root "$root"
		[[ -z "$REPLY_PROCS" ]] && break
		elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')"
		if awk -v e="$elapsed" -v n="$next_trace" 'BEGIN {exit !(e >= n)}'; then
			printf 't=%ss still running: %s\n' "$next_trace" "$(awk '{print $3 "(" $1 ")"}' <<<"$REPLY_PROCS" | xargs)" \
				>>"$RESULTS_DIR/stop.log"
			next_trace=$((next_trace + 1))
		fi
		if awk -v e="$elapsed" -v l="$STOP_LIMIT_S" 'BEGIN {exit !(e > l)}'; then
			REPLY_STOP_LEFT="$(awk '{print $1}' <<<"$REPLY_PROCS" | xargs)"
			break
		fi
		sleep 0.1
	done
	elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
	test_check "SIGTERM to PID 1 stops everything within ${STOP_LIMIT_S} s" \
		"$([[ -z "$REPLY_STOP_LEFT" ]] && echo true || echo false)" \
		"${elapsed} s${REPLY_STOP_LEFT:+; still running: $REPLY_STOP_LEFT}"
}

# The layers and parts of IMAGE: test_buildah_sizes comfy-worker:serverless
test_buildah_sizes() {
	local image="$1" inspect="$RESULTS_DIR/inspect-${1//[:\/]/_}.json"
	buildah inspect --type image "$image" >"$inspect"
	printf '\n== %s\n' "$image"
	python3 "$SCRIPTS_DIR/image_layers.py" <"$inspect"
}

# --- docker -------------------------------------------------------------------------------------

# Boot IMAGE in MODE with no network and check it: test_docker_boot serverless IMAGE [root]
test_docker_boot() {
	local mode="$1" image="$2" variant="${3:-}" container started word probe_status=0 procs elapsed
	local args=(--detach --network none)
	test_boot_env "$mode" "$variant"
	for word in "${BOOT_ENV[@]}"; do
		args+=(--env "$word")
	done
	container="$(docker create "${args[@]}" "$image" "$mode")"
	docker cp "$WORKFLOW" "$container:/tmp/simple_test.json"
	started="$(date +%s.%N)"
	docker start "$container" >/dev/null
	docker exec "$container" python /opt/worker/scripts/image_probe.py "$mode" --started-at "$started" \
		--timeout-s "$BOOT_TIMEOUT_S" --jupyter-token "$JUPYTER_TEST_TOKEN" --workflow /tmp/simple_test.json |
		tee "$RESULTS_DIR/probe-$mode${variant:+-$variant}.txt" || probe_status=$?
	test_check "$mode${variant:+ ($variant)}: probe inside the container" \
		"$([[ "$probe_status" == 0 ]] && echo true || echo false)" "see the lines above"
	procs="$(docker top "$container" -eo pid,uid,comm | tail -n +2)"
	# PID 1 inside is tini; docker top shows host PIDs, so find tini by name.
	test_check_uids "$procs" "$(awk '$3 == "tini" {print $1; exit}' <<<"$procs")" "$variant"
	started="$(date +%s.%N)"
	docker kill --signal TERM "$container" >/dev/null
	if timeout "$STOP_LIMIT_S" docker wait "$container" >/dev/null; then
		elapsed="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
		test_check "SIGTERM to PID 1 stops everything within ${STOP_LIMIT_S} s" true "$elapsed s"
	else
		test_check "SIGTERM to PID 1 stops everything within ${STOP_LIMIT_S} s" false "still running"
	fi
	docker logs "$container" >"$RESULTS_DIR/boot-$mode${variant:+-$variant}.log" 2>&1
	docker rm --force "$container" >/dev/null
}

test_docker_sizes() {
	printf '\n== %s (%s)\n' "$1" "$(docker image inspect --format '{{.Size}}' "$1") bytes"
	docker history --format '{{.Size}}\t{{.CreatedBy}}' "$1" | cut -c1-140
}

# --- main ---------------------------------------------------------------------------------------

# Boot and check MODE's image (both variants for compute): test_mode compute
test_mode() {
	local mode="$1" image
	image="$(build_tag "$mode")"
	lib_log "testing $image"
	if [[ "$BUILD_ENGINE" == docker ]]; then
		test_docker_boot "$mode" "$image"
		[[ "$mode" == compute ]] && test_docker_boot compute "$image" root
		test_docker_sizes "$image"
	else
		# The boot runs in a network namespace of its own that holds only loopback.
		# shellcheck disable=SC2016 # expanded by the inner bash
		unshare --net -- bash -c 'ip link set lo up && source "$0" && test_inside_netns "$@"' \
			"${BASH_SOURCE[0]}" "$mode" "$image" "$RESULTS_DIR" || TEST_FAILURES+=("$mode: see above")
		test_buildah_sizes "$image"
	fi
}

# Runs inside `unshare --net` (buildah): test_inside_netns MODE IMAGE RESULTS_DIR
test_inside_netns() {
	local mode="$1" image="$2"
	RESULTS_DIR="$3"
	test_setup_env
	BUILD_ENGINE=buildah
	test_buildah_boot "$mode" "$image"
	if [[ "$mode" == compute ]]; then
		test_buildah_boot compute "$image" root
	fi
	test_summary
}

test_summary() {
	if ((${#TEST_FAILURES[@]} > 0)); then
		lib_error "${#TEST_FAILURES[@]} check(s) failed:" "${TEST_FAILURES[@]}"
		return 1
	fi
}

main() {
	local target="${1:-both}" mode
	lib_modes "$target" test-image.sh || return
	test_setup_env
	build_detect_engine
	for mode in "${MODES[@]}"; do
		test_mode "$mode"
	done
	lib_log "logs and probe results in $RESULTS_DIR"
	test_summary
	lib_log "all checks passed: ${MODES[*]}"
}

if ! lib_is_sourced; then
	main "$@"
fi
