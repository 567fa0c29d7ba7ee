#!/usr/bin/env bash
# The app's whole test set: formatting and type check, unit tests, build, then the end-to-end tests in Chromium
# (which start the ComfyUI test server, the local endpoint and the app server themselves).
#
#   bash app/scripts/test-all.sh          # from anywhere; needs `npm --prefix app ci` done first
#
# Python comes from ${PYTHON:-<repo>/.venv/bin/python} (the project installed with its test
# extras), Chromium from ${CHROMIUM:-/usr/bin/chromium}. Ends with one line
# `app: N passed, N failed` so a CI log shows the count at the end.
set -Eeuo pipefail

# Fail early, saying what to install, instead of deep inside a test.
# Usage: app_check_tools
app_check_tools() {
  local python="${PYTHON:-../.venv/bin/python}" chromium="${CHROMIUM:-/usr/bin/chromium}"
  if [[ ! -d node_modules ]]; then
    echo "app/node_modules is missing: run npm --prefix app ci" >&2
    return 1
  fi
  if [[ "$python" == */* && ! -x "$python" ]] || ! command -v "$python" >/dev/null; then
    echo "no Python at $python: python3 -m venv .venv && .venv/bin/pip install -e '.[test]' (or set PYTHON)" >&2
    return 1
  fi
  if [[ ! -x "$chromium" ]]; then
    echo "no Chromium at $chromium: apt-get install -y chromium (or set CHROMIUM)" >&2
    return 1
  fi
}

# Run one vitest project, keeping its JSON report for the summary.
# Usage: app_vitest unit
app_vitest() {
  local project="$1"
  npx vitest run --project "$project" --reporter=default --reporter=json --outputFile="test-results/$project.json"
}

# Print `app: N passed, N failed` from the JSON reports (read by people and by CI log scanners).
# Usage: app_summary test-results/unit.json test-results/e2e.json
app_summary() {
  # shellcheck disable=SC2016  # JavaScript template literals, not shell expansions
  node -e '
    let passed = 0, failed = 0, skipped = 0;
    for (const file of process.argv.slice(1)) {
      const report = JSON.parse(require("fs").readFileSync(file, "utf8"));
      passed += report.numPassedTests;
      failed += report.numFailedTests;
      skipped += report.numPendingTests + report.numTodoTests;
    }
    console.log(`app: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$@"
}

_main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  app_check_tools
  mkdir -p test-results
  local status=0
  npm run --silent format:check
  npm run --silent typecheck
  app_vitest unit || status=$?
  if [[ $status -eq 0 ]]; then
    npm run --silent build >/dev/null
    app_vitest e2e || status=$?
    app_summary test-results/unit.json test-results/e2e.json
  else
    app_summary test-results/unit.json
  fi
  return "$status"
}

_is_sourced() {
  [[ "${#FUNCNAME[@]}" -ge 2 && "${FUNCNAME[0]}" == '_is_sourced' && "${FUNCNAME[1]}" == 'source' ]]
}

if ! _is_sourced; then
  _main "$@"
fi
