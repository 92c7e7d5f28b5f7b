#!/usr/bin/env bash
# Install, then run every check CI runs: formatting, lint, types, the layers' import contracts
# (pyproject.toml, [tool.importlinter]), and the test suite on both
# database engines (SQLite and PostGIS).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k heat -x`.
# Every check runs even when an earlier one fails; the exit status is non-zero if any failed.
#
# Environment:
#   MAPSVC_TEST_ENGINES   engines to test, comma-separated (default "sqlite,postgis"); with
#                         "sqlite" alone nothing about PostgreSQL is installed or started
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix='test'
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

bash scripts/setup.sh

# The browser tests drive Debian's Chromium (Playwright's own browser download cannot work here).
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi

# The OGC API tests read the service with GDAL's own client (ogrinfo/ogr2ogr, driver OAPIF).
if ! command -v ogrinfo >/dev/null 2>&1; then
    apt_install gdal-bin
fi

# The reverse-proxy tests run Debian's nginx with the shipped deploy/nginx/mapsvc.conf (as the
# test's user, on loopback ports, everything in a temporary folder) behind a self-signed
# certificate that openssl makes.
if [[ ! -x /usr/sbin/nginx ]] && ! command -v nginx >/dev/null 2>&1; then
    apt_install nginx
    # The package may start its default site on port 80: the tests need only the program.
    as_root invoke-rc.d nginx stop >/dev/null 2>&1 || true
fi
if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl
fi

# Limits shared by several workers are tested against a real Redis, started here if none
# answers; it keeps nothing on disk (no snapshots, no append-only file).
export MAPSVC_TEST_REDIS=${MAPSVC_TEST_REDIS:-redis://127.0.0.1:6379/15}
if ! redis-cli -u "$MAPSVC_TEST_REDIS" ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    say "starting redis-server on 127.0.0.1:6379"
    redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
    for _ in $(seq 50); do redis-cli -u "$MAPSVC_TEST_REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export MAPSVC_TEST_ENGINES=${MAPSVC_TEST_ENGINES:-sqlite,postgis}
if [[ ",$MAPSVC_TEST_ENGINES," == *,postgis,* ]]; then
    # Installs PostgreSQL and PostGIS if missing, starts the server, creates the tests' role and
    # base database with the extension; idempotent.
    bash scripts/postgis.sh
fi

failed=()

check() {
    local name=$1
    shift
    echo "== $name" >&2
    if ! "$@"; then
        failed+=("$name")
    fi
}

check "ruff format" .venv/bin/ruff format --check .
check "ruff check" .venv/bin/ruff check .
check "mypy" .venv/bin/mypy
check "import contracts" .venv/bin/lint-imports --no-cache

echo "== pytest" >&2
status=0
.venv/bin/python -m pytest -n 2 -q "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "pytest collected no tests: that counts as a failure" >&2
    failed+=("pytest (no tests)")
elif [[ $status -ne 0 ]]; then
    failed+=("pytest (exit $status)")
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
