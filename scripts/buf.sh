#!/usr/bin/env bash
# The gRPC contract under buf: `buf lint` (buf.yaml: STANDARD, with the documented exceptions) and
# `buf breaking` (FILE rules) against a git ref — by default the previous commit, so every commit
# on main is checked against its parent; CI's pull requests set BUF_AGAINST to the base branch.
# buf comes from the npm package @bufbuild/buf, pinned, installed into Cargo's target directory.
#
#   scripts/buf.sh                         lint + breaking against HEAD~1
#   BUF_AGAINST=origin/main scripts/buf.sh lint + breaking against another ref
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
target=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
prefix="$target/buf-$BUF_VERSION"
buf="$prefix/node_modules/.bin/buf"
if [ ! -x "$buf" ]; then
  command -v npm >/dev/null || { echo "buf.sh: npm is needed to install @bufbuild/buf" >&2; exit 2; }
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --silent "@bufbuild/buf@$BUF_VERSION" >&2
fi

"$buf" lint
against=${BUF_AGAINST:-HEAD~1}
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "buf.sh: no $against in this clone (shallow?): fetch more history or set BUF_AGAINST" >&2
  exit 2
fi
# The ref's own buf.yaml may predate this one (or not exist): compare with today's rules.
"$buf" breaking --against ".git#ref=$(git rev-parse "$against")" --against-config buf.yaml
echo "buf.sh: lint clean; no breaking change against $against ($(git rev-parse --short "$against"))"
