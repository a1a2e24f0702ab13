#!/usr/bin/env bash
# Static checks: ruff lint, ruff format check, mypy, import-linter contracts. Runs every check,
# then fails if any failed, so one run shows all problems.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${VENV:-.venv}/bin"

status=0
run() {
    echo "lint: $*"
    "$@" || status=1
}

run "${BIN}/ruff" check .
run "${BIN}/ruff" format --check .

mypy_targets=()
for dir in twin flows features models agents benchmarks; do
    [[ -d "${dir}" ]] && mypy_targets+=("${dir}")
done
run "${BIN}/mypy" "${mypy_targets[@]}"

run "${BIN}/lint-imports"

if [[ ${status} -ne 0 ]]; then
    echo "lint: FAILED" >&2
fi
exit "${status}"
