#!/usr/bin/env bash
# Install, create or upgrade the database, add demo data once, and serve the map.
#
# Environment:
#   PORT                 port to serve on (default 8000), on 127.0.0.1 only
#   DEMO_REPORTS         how many demo reports to add to an empty database (default 5000)
#   DEMO_DAYS            over how many past days they spread (default 30)
#   MAPSVC_*             the service's own settings (docs/configuration.md); without
#                        MAPSVC_DATABASE_URL the data lives in instance/mapsvc.sqlite3
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

# Two-factor sign-in seals TOTP secrets with TOTP_ENCRYPTION_KEY, which has no default: the demo
# makes one, kept beside its database in instance/mapsvc.cfg (readable by this user only). A real
# deployment keeps the key out of the folder it backs up with the database (MAPSVC_TOTP_ENCRYPTION_KEY
# from the service's environment), or one copy of that folder holds both the key and the secrets.
# The instance folder (database, its WAL, tile cache, config) is this user's alone.
mkdir -p instance
chmod 700 instance
if [[ -z "${MAPSVC_TOTP_ENCRYPTION_KEY:-}" ]] && ! grep -qs '^TOTP_ENCRYPTION_KEY' instance/mapsvc.cfg; then
    key=$(.venv/bin/python -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')
    (umask 077 && printf 'TOTP_ENCRYPTION_KEY = "%s"\n' "$key" >>instance/mapsvc.cfg)
fi
# umask protects only a file it creates: an older, readable mapsvc.cfg is closed here too.
[[ -f instance/mapsvc.cfg ]] && chmod 600 instance/mapsvc.cfg

.venv/bin/mapsvc db upgrade

# Demo data only while the database holds no event, so a second run keeps what is there.
events=$(.venv/bin/python -c '
from sqlalchemy import func, select
from mapsvc import create_app
from mapsvc.store import get_store
from mapsvc.store.models import Event
with create_app().app_context(), get_store().reader() as session:
    print(session.scalar(select(func.count()).select_from(Event)))
')
if [[ "$events" == 0 ]]; then
    .venv/bin/mapsvc demo --reports "${DEMO_REPORTS:-5000}" --days "${DEMO_DAYS:-30}"
    # A first admin to try the staff pages with, its password random and shown only here. It
    # invites the other roles from /admin/invitations.
    password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(15))')
    if printf '%s\n' "$password" | .venv/bin/mapsvc admin create demo-admin --password-stdin >/dev/null; then
        echo "demo admin: sign in at http://127.0.0.1:${PORT:-8000}/login as demo-admin with $password"
    fi
else
    echo "the database already holds $events events: no demo data added"
fi

exec .venv/bin/mapsvc serve --host 127.0.0.1 --port "${PORT:-8000}"
