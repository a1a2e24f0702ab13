#!/usr/bin/env bash
# Browser tests: an approver answers a paused `implement` run in the Prefect UI, in headless Chromium.
#
# Installs what is missing (Debian's chromium and chromium-driver through apt-get, as root or with sudo;
# selenium into the venv through pip), then runs the tests marked `browser`. Arguments go to pytest
# (default: tests/browser, which holds them; collecting the whole suite only to deselect it adds ~30 s).
#
# Environment:
#   VENV  venv folder (default: .venv)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${VENV:-.venv}/bin"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "browser_ci: installing chromium and chromium-driver (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! "${BIN}/python" -c "import selenium" >/dev/null 2>&1; then
    echo "browser_ci: installing selenium (pip)"
    "${BIN}/python" -m pip install --quiet --disable-pip-version-check selenium
fi

# The driver and browser are passed to Selenium by path; this keeps its driver manager offline regardless.
export SE_OFFLINE=true
exec "${BIN}/python" -m pytest -m browser -q "${@:-tests/browser}"
