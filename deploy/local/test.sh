#!/usr/bin/env bash
# The test job: install, make sure RabbitMQ and PostgreSQL answer, then run the whole suite.
# Under CI=true a missing service fails the run; the tests never skip for it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash deploy/local/install.sh
bash deploy/local/services.sh --postgres
exec .venv/bin/python -m pytest "$@"
