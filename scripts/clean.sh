#!/usr/bin/env bash
# Remove build outputs and tool caches. Keeps .venv and .pumptwin (embedded state: delete it by hand).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache .coverage htmlcov ./*.egg-info
find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
