#!/usr/bin/env bash
# Run the benchmark from anywhere: bash bench/run.sh [run|profile|backlog] [options]
# (see bench/README.md and `bash bench/run.sh --help`). RabbitMQ must be up, with the
# rabbitmq_shovel plugin: deploy/local/services.sh does both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec "$root/.venv/bin/python" -m bench.run "$@"
