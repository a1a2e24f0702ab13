#!/usr/bin/env bash
# Prerequisites of the integration tests (`make test-integration`, tests marked `integration`).
#
# The tests start real servers themselves, in temporary folders on free localhost ports:
# PostgreSQL and Redis from Debian's packages (installed here through apt-get, as root or with sudo,
# when their programs are missing), and moto_server, MLflow's and Prefect's servers from the venv
# (with the clients of the `services` extra, installed through pip when missing).
#
# Environment:
#   VENV  venv folder (default: .venv)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${VENV:-.venv}/bin"

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1
}

packages=()
have_postgres || packages+=(postgresql)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
if [[ ${#packages[@]} -gt 0 ]]; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "services_ci: installing ${packages[*]} (apt-get)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! "${BIN}/python" -c "import psycopg2, redis, boto3, asyncpg" >/dev/null 2>&1 || [[ ! -x "${BIN}/moto_server" ]]; then
    echo "services_ci: installing the services clients and moto_server (pip)"
    "${BIN}/python" -m pip install --quiet --disable-pip-version-check -e ".[services]" "moto[server]>=5" asyncpg
fi

have_postgres || { echo "services_ci: PostgreSQL binaries still missing" >&2; exit 1; }
redis_version=$(redis-server --version | head -n 1)
echo "services_ci: ready (${redis_version%% sha=*}; PostgreSQL $(compgen -G '/usr/lib/postgresql/*/bin' | head -n 1))"
