#!/usr/bin/env bash
# Install, then run every check CI runs: formatting, lint, types, and the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k heat -x`.
# Every check runs even when an earlier one fails; the exit status is non-zero if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

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
