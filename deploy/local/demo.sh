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
exec .venv/bin/gateway demo --config deploy/local/cica.toml deploy/local/sco-rats.toml "$@"
