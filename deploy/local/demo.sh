#!/usr/bin/env bash
# The main job: install, start the local broker, provision both Parties (and the third party),
# generate local keys on first run, then run CICA's and SCO-RATS's gateways in the foreground
# with a demonstration exchange. Ctrl-C stops them; pass --exit to stop after the exchange.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash deploy/local/install.sh
bash deploy/local/services.sh
keys=var/local/keys
mkdir -p "$keys"
for party in CICA SCO-RATS UNOCT; do
  [ -f "$keys/$party-local-1.key" ] \
    || .venv/bin/gateway keys generate --party "$party" --key-id "$party-local-1" --out "$keys"
done
.venv/bin/gateway provision --config deploy/local/cica.toml deploy/local/sco-rats.toml deploy/local/unoct.toml
# One local console account per Party (consent officer and operator); its password is made
# once, kept 0600 in var/local/console-password, never printed.
password_file=var/local/console-password
if [ ! -f "$password_file" ]; then
  (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))' >"$password_file")
fi
.venv/bin/gateway operators add demo --role consent-officer --role operator --officer lo-0042 \
  --password-file "$password_file" --config deploy/local/cica.toml >/dev/null
.venv/bin/gateway operators add demo --role consent-officer --role operator --officer lo-0117 \
  --password-file "$password_file" --config deploy/local/sco-rats.toml >/dev/null
echo "Operator console: CICA http://127.0.0.1:9101/ and SCO-RATS http://127.0.0.1:9102/"
echo "  log in as 'demo'; the password is in $root/$password_file"
exec .venv/bin/gateway demo --config deploy/local/cica.toml deploy/local/sco-rats.toml "$@"
