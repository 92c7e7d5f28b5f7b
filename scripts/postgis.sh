#!/usr/bin/env bash
# Idempotent PostGIS set-up for the tests: install PostgreSQL and PostGIS from Debian's packages
# when missing, start the cluster when it is not running, and create the tests' role and their
# base database (with the postgis extension, marked as a template the tests copy).
# Safe to run again and again: when everything is in place it returns in about a second.
#
# Environment:
#   MAPSVC_TEST_ROLE       role the tests connect as (default mapsvc_test; LOGIN CREATEDB)
#   MAPSVC_TEST_DATABASE   base database the tests copy (default mapsvc_test)
set -euo pipefail

role=${MAPSVC_TEST_ROLE:-mapsvc_test}
database=${MAPSVC_TEST_DATABASE:-mapsvc_test}

prefix=postgis
# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# The newest installed server major version (Debian keeps one directory per version).
server_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }

if [[ -z "$(server_version)" ]]; then
    apt_install postgresql
fi
version=$(server_version)
[[ -n "$version" ]] || die "no PostgreSQL server installed under /usr/lib/postgresql"

if [[ ! -f /usr/share/postgresql/$version/extension/postgis.control ]]; then
    apt_install "postgresql-$version-postgis-3" "postgresql-$version-postgis-3-scripts"
fi

if ! ls /etc/postgresql/"$version"/main >/dev/null 2>&1; then
    say "creating cluster $version/main"
    as_root pg_createcluster "$version" main >/dev/null
fi
if ! as_root pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q online; then
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

# Superuser statements run as the postgres system user over the local socket (peer or trust).
superuser_sql() { PGOPTIONS="-c client_min_messages=warning" as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d "${2:-postgres}" -c "$1"; }
superuser_value() { as_root runuser -u postgres -- psql -X -qtA -d postgres -c "$1"; }

for _ in $(seq 1 30); do
    superuser_value "SELECT 1" >/dev/null 2>&1 && break
    sleep 1
done

if [[ "$(superuser_value "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != 1 ]]; then
    say "creating role $role"
    superuser_sql "CREATE ROLE $role LOGIN CREATEDB"
fi
if [[ "$(superuser_value "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]]; then
    say "creating database $database"
    superuser_sql "CREATE DATABASE $database OWNER $role"
fi
# PostGIS is not a trusted extension: a superuser creates it once, and every copy inherits it.
superuser_sql "CREATE EXTENSION IF NOT EXISTS postgis" "$database"
superuser_sql "ALTER DATABASE $database IS_TEMPLATE true"
