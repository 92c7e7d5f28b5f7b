#!/usr/bin/env bash
# Idempotent set-up: Python >= 3.11 with venv and pip, a .venv in the repository root, and
# mapsvc installed into it in editable mode with its [dev] and [postgres] extras; Debian's wrk
# for bench/load.py when it can be had.
# Safe to run again and again: when nothing changed it returns in well under a second.
#
# Environment:
#   PYTHON             the interpreter to build .venv with (default: the first of python3.13,
#                      python3.12, python3.11, python3 that is at least 3.11)
#   MAPSVC_REINSTALL=1 reinstall the packages even if nothing changed
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.venv
stamp=$venv/.mapsvc-installed

prefix=setup
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Two scripts started at once (demo.sh and test.sh) must not build the same .venv together.
if command -v flock >/dev/null 2>&1; then
    exec 9<scripts/setup.sh
    flock 9
fi

# What the stamp records: the dependencies as declared, and the interpreter that built .venv.
wanted_stamp() {
    {
        sha256sum pyproject.toml | cut -d' ' -f1
        "$venv/bin/python" -c 'import sys; print(sys.version)'
    } 2>/dev/null
}

# bench/load.py drives its readers with Debian's wrk: added when missing, and never fatal (the
# service and its tests do without it).
if ! command -v wrk >/dev/null 2>&1; then
    (apt_install wrk) || say "wrk could not be installed: bench/load.py needs it"
fi

# Fast path: everything is in place already.
if [[ -z "${MAPSVC_REINSTALL:-}" && -x "$venv/bin/mapsvc" && -f "$stamp" ]] &&
    [[ "$(cat "$stamp")" == "$(wanted_stamp)" ]]; then
    exit 0
fi

is_recent() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_recent "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# A usable .venv: an interpreter that runs and is recent enough (a copied or stale .venv whose
# base interpreter has gone is rebuilt).
venv_works() { [[ -x "$venv/bin/python" ]] && is_recent "$venv/bin/python" && "$venv/bin/python" -m pip --version >/dev/null 2>&1; }

make_venv() {
    local python=$1
    rm -rf "$venv"
    if "$python" -m venv "$venv" >/dev/null 2>&1 && venv_works; then
        return 0
    fi
    rm -rf "$venv"
    return 1
}

if ! venv_works; then
    python=$(find_python) || {
        say "no python3 >= 3.11 found; installing Debian's python3"
        apt_install python3 python3-venv python3-pip
        python=$(find_python) || die "python3 >= 3.11 is required; found: $(python3 --version 2>&1 || echo none)"
    }
    say "creating $venv with $python ($("$python" --version 2>&1))"
    if ! make_venv "$python"; then
        # Debian ships venv's ensurepip separately, in python3-venv (python3.11-venv).
        say "'$python -m venv' does not work; installing python3-venv and python3-pip"
        apt_install python3-venv python3-pip
        make_venv "$python" || die "'$python -m venv $venv' still fails: try it by hand to see why"
    fi
    rm -f "$stamp"
fi

say "installing mapsvc and its [dev,postgres] extras into $venv (a few minutes the first time)"
started=$SECONDS
# pip's own output (build back-end warnings included) goes to a log, shown only if pip fails.
log=$venv/pip-install.log
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/python" -m pip install --quiet --progress-bar off -e '.[dev,postgres]' >"$log" 2>&1; then
    cat "$log" >&2
    die "pip install failed (the output above is also in $log)"
fi
wanted_stamp >"$stamp"
say "installed in $((SECONDS - started)) s"
