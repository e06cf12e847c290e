#!/usr/bin/env bash
# Make sure the local services the gateway needs are up: RabbitMQ (with the local vhosts and
# least-privilege users of deploy/rabbitmq/definitions.json) and, with --postgres, PostgreSQL.
# Starts what is installed but stopped; says in one line how to install what is missing; exits
# non-zero (never silently) when a service cannot be reached.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
want_postgres=no
[ "${1:-}" = "--postgres" ] && want_postgres=yes

die() { echo "services: $*" >&2; exit 1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within the deadline"
    sleep 1
  done
}

command -v rabbitmqctl >/dev/null 2>&1 \
  || die "RabbitMQ is not installed: install it with 'apt-get install rabbitmq-server' (Debian/Ubuntu)"
if ! rabbitmqctl status >/dev/null 2>&1; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || die "rabbitmq-server -detached failed"
  wait_for 120 "RabbitMQ" rabbitmqctl await_startup
fi
wait_for 60 "RabbitMQ" rabbitmqctl status
rabbitmqctl import_definitions "$root/deploy/rabbitmq/definitions.json" >/dev/null \
  || die "could not import deploy/rabbitmq/definitions.json"
wait_for 30 "the party-c vhost" sh -c "rabbitmqctl list_permissions -p party-c | grep -q unoct-gateway"
# The local operator (guest, loopback only) inspects every vhost in tests and in the demo.
for vhost in party-a party-b party-c; do
  rabbitmqctl set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
done
# The benchmark compares against a dynamic shovel.
rabbitmq-plugins enable --quiet rabbitmq_shovel >/dev/null || die "could not enable rabbitmq_shovel"

if [ "$want_postgres" = yes ]; then
  command -v pg_lsclusters >/dev/null 2>&1 \
    || die "PostgreSQL is not installed: install it with 'apt-get install postgresql'"
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    echo "services: starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -n | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "could not start PostgreSQL"
  fi
  wait_for 60 "PostgreSQL" pg_isready -h 127.0.0.1 -p 5432
fi
echo "services: ready"
