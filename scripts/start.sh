#!/bin/bash
# The container's entrypoint: start ComfyUI, wait until it answers, then
#   serverless: exec the RunPod handler (ComfyUI on 127.0.0.1, in the background), or
#   compute:    keep ComfyUI in the foreground on 0.0.0.0, JupyterLab beside it.
#
# Usage:
#   start.sh [serverless|compute]   the mode; default $WORKER_MODE (the image's BUILD_MODE)
#   start.sh healthcheck            exit 0 when ComfyUI answers GET /system_stats
#   start.sh CMD [ARGS...]          anything else runs as given: docker run IMAGE bash
#
# Environment (docs/container.md has the full table):
#   COMFYUI_PATH=/comfyui  COMFY_PORT=8188  COMFY_ARGS=  COMFY_READY_TIMEOUT_S=300  COMFY_READY_POLL_MS=20
#   COMFY_PID_FILE=/tmp/comfyui.pid  COMFY_LOG_FILE=/tmp/comfyui.log
#   COMFY_RESTART_MAX=3  COMFY_RESTART_WINDOW_S=600  (serverless: restarts of a crashed ComfyUI)
#   SERVE_API_LOCALLY=false  RP_API_PORT=8000  JUPYTER_TOKEN / JUPYTER_TOKEN_FILE  JUPYTER_PORT=8189
#   WORKER_USER=comfy  RUN_AS_ROOT=false  (started as root, it re-runs itself as WORKER_USER)
set -Eeuo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHILD_PIDS=()
LIB_TAG=start
# shellcheck source=scripts/lib.sh
source "$SCRIPTS_DIR/lib.sh"

# Print a progress line: start_log 'ComfyUI is ready'
start_log() {
	printf '[start] %s\n' "$*"
}

# Print an error to stderr: start_error 'what went wrong' 'what to do'
start_error() {
	printf '[start] error: %s\n' "$@" >&2
}

# Read NAME or the file named by NAME_FILE into NAME (Docker secrets); both set is an error.
#   start_file_env JUPYTER_TOKEN
start_file_env() {
	local name="$1" file_name="${1}_FILE"
	if [[ -n "${!name:-}" && -n "${!file_name:-}" ]]; then
		start_error "both $name and $file_name are set" "set only one of them"
		return 1
	fi
	if [[ -n "${!file_name:-}" ]]; then
		if [[ ! -r "${!file_name}" ]]; then
			start_error "$file_name=${!file_name} cannot be read"
			return 1
		fi
		printf -v "$name" '%s' "$(<"${!file_name}")"
		export "${name?}"
		unset "$file_name"
	fi
}

# Check the settings and give each its default; say which variable is wrong and how to fix it.
start_setup_env() {
	: "${COMFYUI_PATH:=/comfyui}"
	: "${COMFY_PORT:=8188}"
	: "${COMFY_ARGS:=}"
	: "${COMFY_READY_TIMEOUT_S:=300}"
	: "${COMFY_READY_POLL_MS:=20}"
	: "${COMFY_PID_FILE:=${TMPDIR:-/tmp}/comfyui.pid}"
	: "${COMFY_LOG_FILE:=${TMPDIR:-/tmp}/comfyui.log}"
	: "${COMFY_LOG_TAIL_LINES:=40}"
	: "${SERVE_API_LOCALLY:=false}"
	: "${RP_API_PORT:=8000}"
	: "${JUPYTER_PORT:=8189}"
	: "${PYTHON:=python}"
	: "${COMFY_RESTART_MAX:=3}"
	: "${COMFY_RESTART_WINDOW_S:=600}"
	export COMFYUI_PATH COMFY_PID_FILE COMFY_READY_TIMEOUT_S
	if [[ ! "$COMFY_RESTART_MAX" =~ ^[0-9]+$ ]]; then
		start_error "COMFY_RESTART_MAX=$COMFY_RESTART_MAX is not a whole number" \
			"example: COMFY_RESTART_MAX=3 (0 turns the restarts off)"
		return 1
	fi
	if [[ ! "$COMFY_RESTART_WINDOW_S" =~ ^[0-9]+$ ]] || ((COMFY_RESTART_WINDOW_S < 1)); then
		start_error "COMFY_RESTART_WINDOW_S=$COMFY_RESTART_WINDOW_S is not a whole number of seconds" \
			"example: COMFY_RESTART_WINDOW_S=600"
		return 1
	fi
	if [[ ! "$COMFY_PORT" =~ ^[0-9]+$ ]]; then
		start_error "COMFY_PORT=$COMFY_PORT is not a port number" "example: COMFY_PORT=8188"
		return 1
	fi
	if [[ ! "$COMFY_READY_TIMEOUT_S" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
		start_error "COMFY_READY_TIMEOUT_S=$COMFY_READY_TIMEOUT_S is not a number of seconds" \
			"example: COMFY_READY_TIMEOUT_S=300"
		return 1
	fi
	if [[ ! "$COMFY_READY_POLL_MS" =~ ^[0-9]+$ ]] || ((COMFY_READY_POLL_MS < 1)); then
		start_error "COMFY_READY_POLL_MS=$COMFY_READY_POLL_MS is not a whole number of milliseconds" \
			"example: COMFY_READY_POLL_MS=20"
		return 1
	fi
	lib_bool SERVE_API_LOCALLY false || return 1
	SERVE_API_LOCALLY="$REPLY"
	# JupyterLab is a shell on the pod: JUPYTER_ENABLED=0/no/off must turn it off like false.
	lib_bool JUPYTER_ENABLED true || return 1
	JUPYTER_ENABLED="$REPLY"
}

# Seconds ("300", "0.5") to whole microseconds, in REPLY: _seconds_to_us 1.5 -> 1500000
_seconds_to_us() {
	local whole="${1%%.*}" fraction=0
	[[ "$1" == *.* ]] && fraction="${1#*.}"
	fraction="${fraction}000000"
	REPLY=$((10#$whole * 1000000 + 10#${fraction:0:6}))
}

# Now, in microseconds since the epoch, in REPLY (no process spawned).
_now_us() {
	REPLY="${EPOCHREALTIME//[.,]/}"
}

# Exit 0 when ComfyUI answers GET /system_stats with 200: comfy_http_ready 127.0.0.1 8188
# It speaks HTTP over bash's /dev/tcp, so a poll starts no process (curl would cost ~10 ms a
# time), and it reads the whole answer so ComfyUI never sees a reset connection.
comfy_http_ready() {
	local host="${1:-127.0.0.1}" port="${2:-${COMFY_PORT:-8188}}" status_line="" rest fd
	{ exec {fd}<>"/dev/tcp/${host}/${port}"; } 2>/dev/null || return 1
	printf 'GET /system_stats HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$host" "$port" 1>&"$fd" 2>/dev/null || :
	IFS= read -r -t 5 -u "$fd" status_line 2>/dev/null || :
	while IFS= read -r -t 5 -u "$fd" rest 2>/dev/null; do :; done
	exec {fd}>&-
	[[ "$status_line" =~ ^HTTP/[0-9.]+\ 200 ]]
}

# Sleep SECONDS without starting a process: read times out on a pipe only we hold.
#   _nap 0.020
_nap() {
	if [[ -z "${_NAP_FD:-}" ]]; then
		exec {_NAP_FD}<> <(:)
	fi
	read -r -t "$1" -u "$_NAP_FD" _ || :
}

# Print the end of ComfyUI's log to stderr, indented: comfy_log_tail
comfy_log_tail() {
	[[ -s "$COMFY_LOG_FILE" ]] || {
		printf '  (ComfyUI wrote nothing to %s)\n' "$COMFY_LOG_FILE" >&2
		return 0
	}
	printf '[start] last %s lines of %s:\n' "$COMFY_LOG_TAIL_LINES" "$COMFY_LOG_FILE" >&2
	tail -n "$COMFY_LOG_TAIL_LINES" "$COMFY_LOG_FILE" | sed 's/^/  | /' >&2
}

# Start ComfyUI in the background listening on HOST; its PID goes to COMFY_PID and the PID file.
# Its output goes to our stdout and to COMFY_LOG_FILE (for the tail shown on failure).
#   comfy_start 127.0.0.1
comfy_start() {
	local listen="$1" extra=()
	if [[ ! -f "$COMFYUI_PATH/main.py" ]]; then
		start_error "ComfyUI is not installed at COMFYUI_PATH=$COMFYUI_PATH (no main.py)" \
			"set COMFYUI_PATH, or run scripts/runtime-init.sh (compute mode runs it for you)"
		return 1
	fi
	read -r -a extra <<<"$COMFY_ARGS"
	mkdir -p "$(dirname "$COMFY_LOG_FILE")" "$(dirname "$COMFY_PID_FILE")"
	: >"$COMFY_LOG_FILE"
	start_log "starting ComfyUI on $listen:$COMFY_PORT (log: $COMFY_LOG_FILE)"
	"$PYTHON" "$COMFYUI_PATH/main.py" --listen "$listen" --port "$COMFY_PORT" "${extra[@]}" \
		> >(tee -a "$COMFY_LOG_FILE") 2>&1 &
	COMFY_PID=$!
	CHILD_PIDS+=("$COMFY_PID")
	printf '%s\n' "$COMFY_PID" >"$COMFY_PID_FILE"
}

# Wait until ComfyUI (PID) answers, polling every COMFY_READY_POLL_MS, at most
# COMFY_READY_TIMEOUT_S; fail at once, with its log, if it dies first.
#   comfy_wait_ready "$COMFY_PID"   -> 0 ready, 1 died, 2 timed out
comfy_wait_ready() {
	local pid="$1" started deadline interval status=0
	_now_us
	started="$REPLY"
	_seconds_to_us "$COMFY_READY_TIMEOUT_S"
	deadline=$((started + REPLY))
	printf -v interval '%d.%03d' $((COMFY_READY_POLL_MS / 1000)) $((COMFY_READY_POLL_MS % 1000))
	while :; do
		if comfy_http_ready 127.0.0.1 "$COMFY_PORT"; then
			_now_us
			start_log "ComfyUI is ready after $(((REPLY - started) / 1000)) ms"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || status=$?
			_nap 0.2 # let tee write ComfyUI's last lines to the log before we show its tail
			start_error "ComfyUI exited with status $status before it was ready" \
				"its log follows; a failing custom node or too little GPU memory are the usual causes"
			comfy_log_tail
			return 1
		fi
		_now_us
		if ((REPLY >= deadline)); then
			start_error "ComfyUI did not answer on port $COMFY_PORT within COMFY_READY_TIMEOUT_S=${COMFY_READY_TIMEOUT_S}s" \
				"raise COMFY_READY_TIMEOUT_S if its custom nodes take longer to load; its log follows"
			comfy_log_tail
			return 2
		fi
		_nap "$interval"
	done
}

# Forward a signal to every child we started, wait for them, and exit 128+signal.
#   trap '_forward_signal TERM' TERM
_forward_signal() {
	local signal="$1" pid
	trap - TERM INT
	start_log "received SIG$signal; passing it to ComfyUI and the other processes"
	for pid in "${CHILD_PIDS[@]}"; do
		kill -s "$signal" "$pid" 2>/dev/null || : # already gone: nothing to stop
	done
	for pid in "${CHILD_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || : # their exit status is not ours to report
	done
	rm -f "$COMFY_PID_FILE"
	[[ "$signal" == INT ]] && exit 130
	exit 143
}

# Stop the background children that outlive ComfyUI (JupyterLab, the local API): start_stop_children
start_stop_children() {
	local pid
	for pid in "${CHILD_PIDS[@]}"; do
		kill -s TERM "$pid" 2>/dev/null || : # already gone
	done
}

# Run a command as a child we can forward signals to, and wait for it: start_child CMD [ARGS...]
# (A foreground command would delay our SIGTERM trap until it finished; `wait` does not.)
start_child() {
	local pid status=0
	"$@" &
	pid=$!
	CHILD_PIDS+=("$pid")
	wait "$pid" || status=$?
	return "$status"
}

# Download the enabled model groups (Option A): start_download_models
start_download_models() {
	start_child "$SCRIPTS_DIR/download_models.sh"
}

# The handler's command line, in the array HANDLER_CMD.
_handler_command() {
	HANDLER_CMD=("$PYTHON" -m handler)
	if [[ "$SERVE_API_LOCALLY" == true ]]; then
		HANDLER_CMD+=(--rp_serve_api --rp_api_host 0.0.0.0 --rp_api_port "$RP_API_PORT")
	fi
}

# Serverless: ComfyUI on 127.0.0.1 in the background, models (Option A) while it boots, a bounded
# readiness wait, then the handler. No pip install, no git clone. start.sh stays as the handler's
# parent and restarts a crashed ComfyUI (start_supervise); with COMFY_RESTART_MAX=0 it execs the
# handler instead. The image's init (tini -g) delivers SIGTERM to every process; the handler
# watches COMFY_PID_FILE.
start_serverless() {
	trap '_forward_signal TERM' TERM
	trap '_forward_signal INT' INT
	comfy_start 127.0.0.1
	if ! start_download_models; then
		start_error "model download failed (see above); refusing to serve jobs without their models" \
			"fix the cause (HF_TOKEN, disk space, manifest.toml) or unset the DOWNLOAD_* flag"
		kill -s TERM "$COMFY_PID" 2>/dev/null || : # stopping it anyway
		return 1
	fi
	local status=0
	comfy_wait_ready "$COMFY_PID" || status=$?
	if ((status != 0)); then
		kill -s TERM "$COMFY_PID" 2>/dev/null || : # timed out: it may still be running
		return "$status"
	fi
	export COMFY_HOST="127.0.0.1:$COMFY_PORT"
	_handler_command
	if ((COMFY_RESTART_MAX == 0)); then
		trap - TERM INT
		if [[ -n "${_NAP_FD:-}" ]]; then
			exec {_NAP_FD}>&-
		fi
		start_log "starting the handler: ${HANDLER_CMD[*]} (ComfyUI is not restarted: COMFY_RESTART_MAX=0)"
		exec "${HANDLER_CMD[@]}"
	fi
	# The handler waits for a restarted ComfyUI instead of failing its next job (handler/config.py).
	export COMFY_SUPERVISED=true
	start_log "starting the handler: ${HANDLER_CMD[*]}"
	"${HANDLER_CMD[@]}" &
	HANDLER_PID=$!
	CHILD_PIDS+=("$HANDLER_PID")
	start_supervise
}

# Serverless, after the handler started: wait for the handler or ComfyUI to exit. The handler
# exiting ends the container (ComfyUI is stopped, its status is ours). ComfyUI exiting while the
# handler runs is a crash: say why, show its log, and start it again (a new PID in the PID file;
# the job in flight fails with COMFY_CRASHED, the next one waits for it), at most
# COMFY_RESTART_MAX times within COMFY_RESTART_WINDOW_S; one more and the handler is stopped, so
# the container exits and RunPod replaces this worker.
#   start_supervise
start_supervise() {
	local finished status ready
	_RESTARTS=()
	while :; do
		finished="" status=0
		wait -n -p finished "$HANDLER_PID" "$COMFY_PID" || status=$?
		if [[ -z "$finished" ]]; then
			continue # a trapped signal woke us; the trap itself exits
		fi
		if [[ "$finished" == "$HANDLER_PID" ]]; then
			start_log "the handler exited with status $status; stopping ComfyUI"
			kill -s TERM "$COMFY_PID" 2>/dev/null || : # already gone
			wait "$COMFY_PID" 2>/dev/null || : # its status is not the container's
			rm -f "$COMFY_PID_FILE"
			return "$status"
		fi
		_nap 0.2 # let tee write ComfyUI's last lines before we show them
		start_error "ComfyUI exited unexpectedly with status $status$(_signal_note "$status") while the handler runs" \
			"the job in flight fails with COMFY_CRASHED; its log follows (out of memory is the usual cause)"
		comfy_log_tail
		# Restart until one is ready; one that dies while starting (reaped, its log shown) counts
		# as the next crash.
		while :; do
			_restart_allowed || {
				start_stop_handler
				return 1
			}
			start_log "restarting ComfyUI (restart ${#_RESTARTS[@]} of at most $COMFY_RESTART_MAX within ${COMFY_RESTART_WINDOW_S}s)"
			_forget_child "$COMFY_PID"
			comfy_start 127.0.0.1
			ready=0
			comfy_wait_ready "$COMFY_PID" || ready=$?
			((ready == 0)) && break
			if ((ready == 2)); then
				start_error "the restarted ComfyUI did not become ready; stopping the container so RunPod replaces this worker"
				kill -s TERM "$COMFY_PID" 2>/dev/null || : # it may still be running
				start_stop_handler
				return 2
			fi
		done
	done
}

# Count one more restart in _RESTARTS (times in µs) if the budget allows it; else say why not and
# fail: COMFY_RESTART_MAX restarts within the last COMFY_RESTART_WINDOW_S seconds.
#   _restart_allowed || exit 1
_restart_allowed() {
	local now stamp kept=()
	_now_us
	now="$REPLY"
	for stamp in "${_RESTARTS[@]}"; do
		((now - stamp < COMFY_RESTART_WINDOW_S * 1000000)) && kept+=("$stamp")
	done
	_RESTARTS=("${kept[@]}")
	if ((${#_RESTARTS[@]} >= COMFY_RESTART_MAX)); then
		start_error "ComfyUI crashed $((${#_RESTARTS[@]} + 1)) times within COMFY_RESTART_WINDOW_S=${COMFY_RESTART_WINDOW_S}s (COMFY_RESTART_MAX=$COMFY_RESTART_MAX); stopping the container so RunPod replaces this worker" \
			"see the logs above; if a workflow runs this GPU out of memory, lower its size or pick a bigger GPU"
		return 1
	fi
	_RESTARTS+=("$now")
}

# " (killed by SIGKILL)" for an exit status above 128, else nothing: _signal_note 137
_signal_note() {
	local status="$1" name
	((status > 128)) || return 0
	name="$(kill -l "$((status - 128))" 2>/dev/null)" || return 0
	printf ' (killed by SIG%s)' "$name"
}

# Drop PID from CHILD_PIDS (a process we already reaped; its number may be reused): _forget_child 42
_forget_child() {
	local pid kept=()
	for pid in "${CHILD_PIDS[@]}"; do
		[[ "$pid" == "$1" ]] || kept+=("$pid")
	done
	CHILD_PIDS=("${kept[@]}")
}

# Stop the handler (SIGTERM, then wait for it) and remove the PID file: start_stop_handler
start_stop_handler() {
	kill -s TERM "$HANDLER_PID" 2>/dev/null || : # already gone
	wait "$HANDLER_PID" 2>/dev/null || : # the container's status is the crash, not the handler's
	rm -f "$COMFY_PID_FILE"
}

# Compute (a pod): install what the image lacks, ComfyUI on 0.0.0.0 in the foreground,
# JupyterLab (token required) and the model downloads beside it.
start_compute() {
	trap '_forward_signal TERM' TERM
	trap '_forward_signal INT' INT
	start_file_env JUPYTER_TOKEN
	# A pod is for working on it: a failed install is reported, not a reason to stay down.
	# runtime-init writes no marker then, so the next boot tries again.
	if ! start_child "$SCRIPTS_DIR/runtime-init.sh"; then
		start_error "runtime-init.sh failed (see above); starting ComfyUI with what is installed" \
			"fix the cause, then restart the pod or run scripts/runtime-init.sh by hand"
	fi
	comfy_start 0.0.0.0
	start_jupyter
	"$SCRIPTS_DIR/download_models.sh" &
	CHILD_PIDS+=("$!")
	local status=0
	comfy_wait_ready "$COMFY_PID" || status=$?
	start_check_jupyter
	if ((status != 0)); then
		start_keep_jupyter "$status"
		start_stop_children
		return "$status"
	fi
	if [[ "$SERVE_API_LOCALLY" == true ]]; then
		export COMFY_HOST="127.0.0.1:$COMFY_PORT"
		_handler_command
		start_log "serving RunPod's local API on port $RP_API_PORT"
		"${HANDLER_CMD[@]}" &
		CHILD_PIDS+=("$!")
	fi
	status=0
	wait "$COMFY_PID" || status=$?
	start_log "ComfyUI exited with status $status; stopping"
	if ((status != 0)); then
		start_keep_jupyter "$status"
	fi
	start_stop_children
	rm -f "$COMFY_PID_FILE"
	return "$status"
}

# JupyterLab on JUPYTER_PORT, only with a token: it is a shell on the pod.
start_jupyter() {
	if [[ "$JUPYTER_ENABLED" == false ]]; then
		return 0
	fi
	if [[ -z "${JUPYTER_TOKEN:-}" ]]; then
		start_error "JupyterLab not started: JUPYTER_TOKEN is not set (it is never started open)" \
			"set JUPYTER_TOKEN (or JUPYTER_TOKEN_FILE) to a long random string, e.g. \$(openssl rand -hex 24)"
		return 0
	fi
	# jupyter_server reads JUPYTER_TOKEN from the environment: the token stays out of `ps`.
	export JUPYTER_TOKEN
	local root="${JUPYTER_ROOT:-/workspace}"
	[[ -d "$root" ]] || root="$HOME"
	# As root (RUN_AS_ROOT=true) JupyterLab refuses to start unless told it may.
	local as_root=()
	[[ "$(id -u)" == 0 ]] && as_root=(--allow-root)
	start_log "starting JupyterLab on port $JUPYTER_PORT in $root (token from JUPYTER_TOKEN)"
	jupyter lab --ip=0.0.0.0 --port="$JUPYTER_PORT" --no-browser "${as_root[@]}" \
		--ServerApp.root_dir="$root" --ServerApp.allow_remote_access=True &
	JUPYTER_PID="$!"
	CHILD_PIDS+=("$JUPYTER_PID")
}

# Say so when JupyterLab has already exited (a bad setting, a port in use): the pod goes on
# without it, but the user must not be left guessing why 8189 does not answer.
start_check_jupyter() {
	[[ -n "${JUPYTER_PID:-}" ]] || return 0
	kill -0 "$JUPYTER_PID" 2>/dev/null && return 0
	local status=0
	wait "$JUPYTER_PID" || status=$?
	start_error "JupyterLab exited at start (status $status); ComfyUI goes on without it" \
		"its reason is in the log above; fix it and restart the pod (JUPYTER_ENABLED=false turns it off)"
	JUPYTER_PID=""
}

# A pod whose ComfyUI failed keeps JupyterLab up, so the user can fix the node that broke it
# instead of watching the pod restart in a loop. Returns when JupyterLab ends (or a signal).
#   start_keep_jupyter 1
start_keep_jupyter() {
	local status="$1"
	[[ -n "${JUPYTER_PID:-}" ]] && kill -0 "$JUPYTER_PID" 2>/dev/null || return 0
	start_error "ComfyUI failed (status $status); JupyterLab stays up on port $JUPYTER_PORT so you can fix it" \
		"see the log above, fix the cause (often a custom node), then restart the pod"
	wait "$JUPYTER_PID" || : # its own exit status is not ComfyUI's failure
}

# Started as root (RunPod's default), hand the unprivileged user what it must write, then run
# this script again as that user. Volumes arrive root-owned, so their models folders (and, on a
# pod, /workspace itself for JupyterLab) are given to the user, directories only, never -R.
# Skipped when not root, when RUN_AS_ROOT=true, or when the user does not exist (not our image).
#   start_drop_privileges compute
start_drop_privileges() {
	local mode="$1" user="${WORKER_USER:-comfy}" volume dir home
	lib_bool RUN_AS_ROOT false || return 1
	[[ "$(id -u)" == 0 && "$REPLY" == false ]] || return 0
	# As root, run only system binaries: the venv on PATH is writable by the worker user.
	local user_path="$PATH"
	local PATH=/usr/sbin:/usr/bin:/sbin:/bin
	id "$user" >/dev/null 2>&1 || return 0
	for volume in ${MODEL_VOLUMES:-/runpod-volume /workspace}; do
		[[ -d "$volume" && ! -L "$volume/models" ]] || continue
		mkdir -p "$volume/models"
		if [[ "$mode" == compute && "$volume" == /workspace ]]; then
			chown -h "$user:" "$volume"
		fi
		for dir in "$volume/models" "$volume/models"/*/; do
			# Never through a symlink: the user could point one at a folder only root should own.
			if [[ -d "$dir" && ! -L "${dir%/}" ]]; then
				chown -h "$user:" "${dir%/}"
			fi
		done
	done
	home="$(getent passwd "$user" | cut -d: -f6)"
	start_log "dropping root: running as $user"
	HOME="${home:-/tmp}" exec setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups \
		-- /usr/bin/env PATH="$user_path" "$BASH" "${BASH_SOURCE[0]}" "$mode"
}

# Usage: main [serverless|compute|healthcheck|CMD...] (see the top of this file)
main() {
	local mode="${1:-${WORKER_MODE:-serverless}}"
	case "$mode" in
		serverless | compute)
			export WORKER_MODE="$mode"
			start_drop_privileges "$mode"
			start_setup_env
			"start_$mode"
			;;
		healthcheck)
			start_setup_env
			comfy_http_ready 127.0.0.1 "$COMFY_PORT"
			;;
		*) exec "$@" ;;
	esac
}

lib_is_sourced || main "$@"
