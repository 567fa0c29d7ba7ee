#!/bin/bash
# Export one source tree for an air-gapped image build (scripts/build-image.sh with SOURCES_DIR):
# the tree of REF from a git directory (a clone, a bare mirror or a partial snapshot) into DEST,
# with DEST/.source-commit holding the commit, which the build prints and records.
#
# Usage:
#   export-sources.sh GIT_DIR REF DEST [PATHSPEC_EXCLUDE...]
#   export-sources.sh ~/mirrors/ComfyUI.git v0.12.3 ~/sources/ComfyUI
#   export-sources.sh ~/mirrors/ComfyUI-Sharp.git 4600f45e2de8d55b7a6dcbd9970c534c7affb1a2 \
#       ~/sources/ComfyUI-Sharp ':!assets'
#
# Blobs a partial snapshot lacks (large assets) are left out and listed, instead of cutting the
# export short. DEST must not exist or be empty; name it as the manifest names the entry.
set -Eeuo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LIB_TAG=export-sources

# The paths of REF's blobs that GIT_DIR does not hold, one a line, in REPLY_MISSING.
#   export_missing_blobs GIT_DIR COMMIT
export_missing_blobs() {
	local git_dir="$1" commit="$2"
	REPLY_MISSING="$(
		git -C "$git_dir" ls-tree -r -z "$commit" |
			python3 -c '
import subprocess, sys
entries = [e for e in sys.stdin.buffer.read().split(b"\0") if e]
blobs = []
for entry in entries:
    meta, _, path = entry.partition(b"\t")
    kind, sha = meta.split()[1:3]
    if kind == b"blob":
        blobs.append((sha, path))
check = subprocess.run(["git", "-C", sys.argv[1], "cat-file", "--batch-check"],
    input=b"".join(sha + b"\n" for sha, _ in blobs), capture_output=True, check=True).stdout.splitlines()
for (sha, path), line in zip(blobs, check):
    if line.endswith(b" missing"):
        sys.stdout.buffer.write(path + b"\n")
' "$git_dir"
	)"
}

main() {
	if (($# < 3)); then
		lib_error "usage: export-sources.sh GIT_DIR REF DEST [PATHSPEC_EXCLUDE...]" \
			"example: export-sources.sh ~/mirrors/ComfyUI.git v0.12.3 ~/sources/ComfyUI"
		return 2
	fi
	local git_dir="$1" ref="$2" dest="$3" commit path
	shift 3
	local excludes=("$@")
	if ! commit="$(git -C "$git_dir" rev-parse --verify --quiet "$ref^{commit}")"; then
		lib_error "$git_dir has no commit for $ref" "list what it has: git -C $git_dir log --oneline -5; git -C $git_dir tag"
		return 1
	fi
	if [[ -e "$dest" ]] && [[ -n "$(ls -A "$dest")" ]]; then
		lib_error "$dest exists and is not empty" "remove it or pick another DEST"
		return 1
	fi
	export_missing_blobs "$git_dir" "$commit"
	while IFS= read -r path; do
		[[ -n "$path" ]] || continue
		lib_log "WARNING: $path is not in the snapshot; left out"
		excludes+=(":(exclude,literal)$path")
	done <<<"$REPLY_MISSING"
	mkdir -p "$dest"
	# git still names each excluded missing blob on stderr ("invalid object"), though it exports
	# the rest and succeeds; those lines repeat the warnings above, so they are dropped.
	local errors
	errors="$(mktemp)"
	git -C "$git_dir" archive --format=tar "$commit" -- . "${excludes[@]}" 2>"$errors" | tar -x -C "$dest"
	grep -v "^error: invalid object [0-9]* [0-9a-f]* for '" "$errors" >&2 || : # nothing else to show
	rm -f "$errors"
	printf '%s\n' "$commit" >"$dest/.source-commit"
	lib_log "$ref ($commit) exported to $dest"
}

if ! lib_is_sourced; then
	main "$@"
fi
