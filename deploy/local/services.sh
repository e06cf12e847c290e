#!/usr/bin/env bash
# Make sure the local services the gateway needs are up: RabbitMQ (with the local vhosts and
# least-privilege users of deploy/rabbitmq/definitions.json, and a TLS listener on 5671 that
# requires a client certificate) and, with --postgres, PostgreSQL.
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

# The local CA and certificates: the broker's (server.*) and one per gateway broker user,
# common name = the user. They live outside the checkout, where the broker user can read them.
tls_dir=${GW_LOCAL_TLS_DIR:-/var/lib/gateway-local-tls}
tls_users="cica-gateway cica-peer sco-rats-gateway sco-rats-peer unoct-gateway unoct-peer"
tls_conf=/etc/rabbitmq/conf.d/20-gateway-tls.conf
python=${GW_PYTHON:-$root/.venv/bin/python}

# Certificates and the broker's TLS configuration, before the broker starts if it is stopped.
write_tls_files() {
  local args=() user
  for user in $tls_users; do args+=(--user "$user"); done
  PYTHONPATH="$root" "$python" -m gateway certs local --out "$tls_dir" "${args[@]}" \
    || die "could not create the local TLS certificates in $tls_dir"
  chown rabbitmq: "$tls_dir/server.key" 2>/dev/null || true
  mkdir -p "$(dirname "$tls_conf")"
  local wanted
  wanted=$(cat <<CONF
# Written by deploy/local/services.sh: AMQP over TLS, a client certificate from the local CA
# is required (the gateways' connections); plain 5672 stays for the local desks and operator.
listeners.ssl.local = 127.0.0.1:5671
ssl_options.cacertfile = $tls_dir/ca.pem
ssl_options.certfile = $tls_dir/server.pem
ssl_options.keyfile = $tls_dir/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
CONF
)
  [ "$(cat "$tls_conf" 2>/dev/null)" = "$wanted" ] || printf '%s\n' "$wanted" > "$tls_conf"
}

# A broker that was already running before the TLS configuration existed restarts once.
ensure_tls_listener() {
  rabbitmq-diagnostics -q listeners 2>/dev/null | grep -q "port: 5671" && return 0
  echo "services: restarting RabbitMQ to open its TLS listener on 5671"
  rabbitmqctl shutdown >/dev/null 2>&1 || true
  rabbitmq-server -detached || die "rabbitmq-server -detached failed"
  wait_for 120 "RabbitMQ" rabbitmqctl await_startup
  rabbitmq-diagnostics -q listeners | grep -q "port: 5671" \
    || die "RabbitMQ did not open its TLS listener on 5671; see $tls_conf and the broker log"
}

command -v rabbitmqctl >/dev/null 2>&1 \
  || die "RabbitMQ is not installed: install it with 'apt-get install rabbitmq-server' (Debian/Ubuntu)"
write_tls_files
if ! rabbitmqctl status >/dev/null 2>&1; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || die "rabbitmq-server -detached failed"
  wait_for 120 "RabbitMQ" rabbitmqctl await_startup
fi
wait_for 60 "RabbitMQ" rabbitmqctl status
ensure_tls_listener
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
