#!/usr/bin/env bash
# Create .venv with Python 3.11 (if missing) and install pumptwin with its dev tools.
#
# Idempotent: re-running it on an installed venv only re-checks the requirements.
# torch goes in first: pip then keeps the CPU wheel instead of resolving a CUDA build of several GB.
#
# Environment:
#   PYTHON      interpreter that creates the venv (default: python3.11)
#   VENV        venv folder (default: .venv)
#   WHEELS_DIR  local wheel folder passed as --find-links when it exists (default: /opt/wheels)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
WHEELS_DIR="${WHEELS_DIR:-/opt/wheels}"
TORCH_VERSION="2.13.0"

die() {
    echo "bootstrap: error: $*" >&2
    exit 1
}
trap 'echo "bootstrap: FAILED at line ${LINENO}: ${BASH_COMMAND}" >&2' ERR

if [[ ! -x "${VENV}/bin/python" ]]; then
    command -v "${PYTHON}" >/dev/null 2>&1 || die "${PYTHON} not found; install Python 3.11 or set PYTHON=/path/to/python3.11"
    echo "bootstrap: creating ${VENV} with $(command -v "${PYTHON}")"
    "${PYTHON}" -m venv "${VENV}"
fi

"${VENV}/bin/python" - <<'PY' || die "${VENV} is not a Python 3.11 venv; remove it and run 'make venv' again"
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

pip_args=(--disable-pip-version-check)
if [[ -d "${WHEELS_DIR}" ]]; then
    pip_args+=(--find-links "${WHEELS_DIR}")
fi

echo "bootstrap: installing torch==${TORCH_VERSION}"
"${VENV}/bin/python" -m pip install "${pip_args[@]}" "torch==${TORCH_VERSION}"

echo "bootstrap: installing pumptwin in editable mode with dev extras"
"${VENV}/bin/python" -m pip install "${pip_args[@]}" -e '.[agents,services,dev]'

"${VENV}/bin/python" -c "import pumptwin.twin, pumptwin.flows" || die "pumptwin packages are not importable from ${VENV}"

touch "${VENV}/.installed"
echo "bootstrap: ${VENV} is ready"
