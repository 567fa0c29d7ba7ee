#!/bin/bash
# Functions shared by every script in scripts/ (sourced, never run), the boot scripts in the image
# (start.sh, runtime-init.sh, download_models.sh) included:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Each script sets LIB_TAG (its log prefix) before calling these, and ends with
#   lib_is_sourced || main "$@"
# so a test can source it and call one function.

# Print a progress line: lib_log 'building serverless'
lib_log() {
	printf '[%s] %s\n' "${LIB_TAG:-script}" "$*" >&2
}

# Print an error and what to do, one argument a line: lib_error 'what went wrong' 'what to do'
lib_error() {
	local first="$1"
	shift
	printf '[%s] error: %s\n' "${LIB_TAG:-script}" "$first" >&2
	if (($# > 0)); then
		printf '[%s]   %s\n' "${LIB_TAG:-script}" "$@" >&2
	fi
}

# Read the boolean variable NAME (true/false/1/0/yes/no/on/off, any case; empty = DEFAULT) into
# REPLY as true or false; anything else is an error naming the variable.
#   lib_bool KEEP_CONTAINERS false && [[ "$REPLY" == true ]]
lib_bool() {
	local name="$1" default="$2" value
	value="${!name:-$default}"
	case "${value,,}" in
		true | 1 | yes | on) REPLY=true ;;
		false | 0 | no | off) REPLY=false ;;
		*)
			lib_error "$name=$value is not a boolean" "use true or false (also 1/0, yes/no, on/off)"
			return 1
			;;
	esac
}

# True when the calling script was sourced rather than run (so tests can call one function).
#   lib_is_sourced || main "$@"
lib_is_sourced() {
	# FUNCNAME: [0]=lib_is_sourced, [1]=the caller's top level ("source" when sourced, "main" when run)
	[[ "${#FUNCNAME[@]}" -ge 2 && "${FUNCNAME[1]}" == 'source' ]]
}

# The image modes TARGET names (serverless, compute or both) in MODES; anything else is an error
# that shows SCRIPT's usage.
#   lib_modes "${1:-both}" build-image.sh || return
lib_modes() {
	local target="$1" script="$2"
	# shellcheck disable=SC2034 # MODES is the result, read by the caller
	case "$target" in
		both) MODES=(serverless compute) ;;
		serverless | compute) MODES=("$target") ;;
		*)
			lib_error "unknown mode '$target'" "usage: $script [serverless|compute|both]"
			return 2
			;;
	esac
}
