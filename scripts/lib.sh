# shellcheck shell=bash
# Shell helpers shared by the set-up scripts; source it after setting `prefix`:
#   prefix=setup; source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

say() { printf '%s: %s\n' "${prefix:-mapsvc}" "$*" >&2; }

die() {
    say "$*"
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (install sudo, or run this once as root)"
    fi
}

# Install Debian packages, running `apt-get update` once per script run.
apt_updated=
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    # Wait for another apt or dpkg run to finish rather than fail on its lock.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    if [[ -z "$apt_updated" ]]; then
        say "apt-get update"
        as_root "${apt[@]}" update -qq
        apt_updated=1
    fi
    say "apt-get install $*"
    as_root "${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}
