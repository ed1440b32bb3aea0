#!/usr/bin/env bash
# Regenerates the README's configuration section from the config structs
# (`flightmesh config-docs`); a test fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
docs=$(cargo run -q -p flightmesh -- config-docs)
python3 - "$docs" <<'PY'
import re, sys
readme = open("README.md").read()
start, end = "<!-- config:start -->", "<!-- config:end -->"
head, rest = readme.split(start, 1)
_, tail = rest.split(end, 1)
open("README.md", "w").write(f"{head}{start}\n{sys.argv[1].strip()}\n{end}{tail}")
PY
