#!/usr/bin/env bash
# Vendors the API docs UIs the gateway serves offline at /docs (Swagger UI) and /redoc (ReDoc):
# fetches the pinned npm packages and writes their bundles, gzipped (served as they are to every
# browser), with their licences into services/gateway/assets/vendor/. Run it to upgrade; commit
# the result.
#   scripts/vendor-docs-ui.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI=5.35.0
REDOC=2.5.4
out=services/gateway/assets/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC"
m="$work/node_modules"
rm -rf "$out" && mkdir -p "$out"
gzip -9n < "$m/swagger-ui-dist/swagger-ui-bundle.js" > "$out/swagger-ui-bundle.js.gz"
gzip -9n < "$m/swagger-ui-dist/swagger-ui.css" > "$out/swagger-ui.css.gz"
gzip -9n < "$m/redoc/bundles/redoc.standalone.js" > "$out/redoc.standalone.js.gz"
cp "$m/swagger-ui-dist/LICENSE" "$out/LICENSE.swagger-ui"
cp "$m/swagger-ui-dist/NOTICE" "$out/NOTICE.swagger-ui"
cp "$m/redoc/LICENSE" "$out/LICENSE.redoc"
printf 'swagger-ui-dist %s\nredoc %s\n' "$SWAGGER_UI" "$REDOC" > "$out/VERSIONS"
ls -l "$out"
