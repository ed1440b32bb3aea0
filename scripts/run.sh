#!/usr/bin/env bash
# The run command (README): starts PostgreSQL, Redis and RabbitMQ if they are not running, then
# the whole mesh in one process with a demo catalog (`flightmesh up --demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services-up.sh
exec cargo run --locked -p flightmesh -- up --demo
