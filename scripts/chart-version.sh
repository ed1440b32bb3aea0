#!/usr/bin/env bash
# The version a service's chart is published under: its Chart.yaml version plus the commit, as a
# SemVer pre-release ("0.1.0-g1a2b3c4d5e6f"; the "g" keeps an all-digit hash a valid identifier).
# Used by the release workflow to package, push and install the same version.
#   scripts/chart-version.sh <service> <commit sha>
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ ! -f "helm/$1/Chart.yaml" ] || ! [[ "$2" =~ ^[0-9a-f]{12,40}$ ]]; then
  echo "usage: scripts/chart-version.sh <service> <commit sha>" >&2
  exit 2
fi
version=$(awk '$1 == "version:" { gsub(/"/, "", $2); print $2; exit }' "helm/$1/Chart.yaml")
echo "$version-g${2:0:12}"
