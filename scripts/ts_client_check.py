#!/usr/bin/env python3
"""A TypeScript client generated from the OpenAPI document fits the web client.

Starts the whole mesh (`flightmesh up`) on a fresh database, vhost and Redis prefix, reads its
/openapi.json, generates the API's TypeScript types with openapi-typescript (npm, pinned in
tools/ts-client/package-lock.json, installed into Cargo's target directory) and compiles
tools/ts-client/check.ts with tsc --strict: the generated answers must fit the shapes the web
client uses (tools/ts-client/web-client.ts, from docs/contract.md) and its requests must fit what
the API accepts. How to generate a client for your own app is in the README ("Tools").

    python3 scripts/ts_client_check.py   (about 10 s with a built flightmesh)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from mesh_lib import ROOT, fresh_mesh, http, target_dir

SOURCES = ["package.json", "package-lock.json", "tsconfig.json", "web-client.ts", "check.ts"]


def main() -> int:
    work = target_dir() / "ts-client"
    work.mkdir(parents=True, exist_ok=True)
    lock = (ROOT / "tools/ts-client/package-lock.json").read_bytes()
    installed = work / "node_modules/.installed-lock"
    for name in SOURCES:
        shutil.copyfile(ROOT / "tools/ts-client" / name, work / name)
    if not installed.exists() or installed.read_bytes() != lock:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=work, check=True)
        installed.write_bytes(lock)
    with fresh_mesh("ts", 32000 - 4000 - 100) as mesh:
        status, document = http("GET", mesh.url("/openapi.json"))
        if status != 200:
            raise SystemExit(f"ts-client-check: /openapi.json answered {status}")
    (work / "openapi.json").write_text(json.dumps(document))
    bin_dir = work / "node_modules/.bin"
    subprocess.run([str(bin_dir / "openapi-typescript"), "openapi.json", "-o", "api.d.ts", "--silent"], cwd=work,
                   check=True)
    compiled = subprocess.run([str(bin_dir / "tsc"), "-p", "tsconfig.json"], cwd=work, capture_output=True,
                              text=True)
    if compiled.returncode != 0:
        print(compiled.stdout, compiled.stderr, file=sys.stderr)
        print("ts-client-check: the generated types do not fit the web client (above)", file=sys.stderr)
        return 1
    print(f"ts-client-check: api.d.ts generated from /openapi.json ({len(document['paths'])} paths) "
          "fits the web client's shapes (tsc --strict)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
