#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and RabbitMQ answer on their standard local ports; starts whichever
# is stopped and, on a Debian machine that lacks one, installs it. Idempotent: on a machine where
# all three run it only checks.
#   PostgreSQL 127.0.0.1:5432 (trust auth, user postgres)
#   Redis      127.0.0.1:6379 (no persistence)
#   RabbitMQ   127.0.0.1:5672 (guest/guest)
set -euo pipefail

missing=()
command -v pg_ctlcluster >/dev/null || missing+=(postgresql postgresql-client)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services-up: installing ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

wait_for() { # tries, delay, command...
  local tries=$1 delay=$2; shift 2
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep "$delay"; done
  "$@"
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  # shellcheck disable=SC2012  # version directories: plain names
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  # Local trust auth, as the tests and the dev stack expect (never do this on a shared host).
  sed -Ei 's/^((local|host)\s.*)\s(peer|scram-sha-256|md5)\s*$/\1 trust/' "/etc/postgresql/$version/main/pg_hba.conf"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for 60 0.5 pg_isready -q -h 127.0.0.1 -p 5432
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 40 0.25 sh -c 'redis-cli -h 127.0.0.1 ping | grep -q PONG'
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  rabbitmq-server -detached
  wait_for 90 1 rabbitmq-diagnostics -q ping
  rabbitmqctl -q await_startup
fi

echo "services-up: PostgreSQL, Redis and RabbitMQ are up"
