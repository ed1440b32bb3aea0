#!/usr/bin/env python3
"""Helpers of the offline infra checks (scripts/infra-lint.sh, scripts/infra_test.py,
scripts/k8s_generate.py): chart copies with their library dependency built, helm rendering, and
strict validation of Kubernetes objects against the schemas bundled by kubernetes-validate.

    python scripts/infra_lib.py validate --kube-version 1.37.0 FILE...

validates every object of every FILE (multi-document YAML): all schema errors of each object
(strict schemas: unknown fields are errors), API versions Kubernetes does not serve at that version
are errors, objects of other API groups (CRDs such as ServiceMonitor) are reported and skipped,
Secret data must be base64, and a kind/namespace/name twice is an error. Prints one line per file
("#FILE <path> objects=N errors=N crds=N") after its errors; exit 1 on any error.

Runs in the infra venv (PyYAML, jsonschema, referencing, kubernetes-validate).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELM_DIR = ROOT / "helm"
LIBRARY = "flightmesh-lib"
DEFAULT_KUBE_VERSION = "1.37.0"   # newest schemas kubernetes-validate 1.37.0 bundles
MIN_KUBE_VERSION = "1.27.0"       # the charts' kubeVersion floor


def venv_bin(name: str) -> str:
    """A tool of the infra venv (the one running this interpreter), else from PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def helm_env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return env


def service_charts(helm_dir: Path = HELM_DIR) -> list[str]:
    return sorted(p.parent.name for p in helm_dir.glob("*/Chart.yaml") if p.parent.name != LIBRARY)


def prepare_charts(dst: Path, src: Path = HELM_DIR) -> Path:
    """Copies helm/ to dst/helm and runs `helm dependency build` in every service chart (the library
    is a file:// dependency; nothing generated is committed). Returns dst/helm."""
    out = dst / "helm"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    env = helm_env(dst / ".helm")
    for chart in service_charts(out):
        r = subprocess.run(
            [venv_bin("helm"), "dependency", "build", str(out / chart)],
            env=env, capture_output=True, text=True,
        )
        if r.returncode != 0:
            raise RuntimeError(f"helm dependency build {chart} failed:\n{r.stdout}{r.stderr}")
    return out


def charts_dir() -> Path:
    """The prepared charts: FLIGHTMESH_CHARTS_DIR (infra-lint prepares it once), else a fresh copy."""
    given = os.environ.get("FLIGHTMESH_CHARTS_DIR")
    if given:
        return Path(given)
    global _PREPARED
    if _PREPARED is None:
        _PREPARED = prepare_charts(Path(tempfile.mkdtemp(prefix="flightmesh-charts-")))
    return _PREPARED


_PREPARED: Path | None = None


def helm_template(
    chart: str,
    values: dict | None = None,
    values_files: list[Path] | None = None,
    release: str | None = None,
    namespace: str = "flightmesh",
    kube_version: str = DEFAULT_KUBE_VERSION,
    charts: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    charts = charts or charts_dir()
    cmd = [
        venv_bin("helm"), "template", release or chart, str(charts / chart),
        "--namespace", namespace, "--kube-version", kube_version,
    ]
    tmp = None
    for f in values_files or []:
        cmd += ["-f", str(f)]
    if values:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump(values, tmp)
        tmp.close()
        cmd += ["-f", tmp.name]
    try:
        r = subprocess.run(cmd, env=helm_env(charts.parent / ".helm"), capture_output=True, text=True)
    finally:
        if tmp:
            os.unlink(tmp.name)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r


def render(chart: str, **kw) -> list[dict]:
    """The objects `helm template` renders (hooks included)."""
    return [d for d in yaml.safe_load_all(helm_template(chart, **kw).stdout) if d]


# ----------------------------------------------------------------------------- validation
def validate_files(files: list[str], kube_version: str) -> int:
    import jsonschema
    from kubernetes_validate import utils as U
    from referencing import Registry, Resource

    avail = [v for v in U.all_versions() if U.major_minor(v) <= U.major_minor(kube_version)]
    if not avail or U.major_minor(kube_version) > U.latest_version():
        print(f"FATAL kubernetes-validate has no schemas for {kube_version}")
        return 2
    sdir = f"kubernetes-json-schema/v{avail[-1]}-local-strict"
    defs = U.schema_contents(sdir + "/_definitions.json", kube_version)
    builtin = {
        g["group"]
        for d in defs["$defs"].values()
        for g in d.get("x-kubernetes-group-version-kind", []) or []
    }
    registry = Resource.from_contents(defs) @ Registry()
    total_errors = 0
    for fn in files:
        errors = crds = objs = 0
        seen: dict = {}
        text = Path(fn).read_text(encoding="utf-8")
        for chunk in re.split(r"(?m)^---[^\n]*\n?", text):
            m = re.search(r"(?m)^# Source: (.+)$", chunk)
            where = m.group(1) if m else fn
            try:
                doc = yaml.safe_load(chunk)
            except yaml.YAMLError as e:
                print(f"  ERROR {where}: YAML: {e}".replace("\n", " "))
                errors += 1
                continue
            if doc is None:
                continue
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                print(f"  ERROR {where}: not a Kubernetes object")
                errors += 1
                continue
            objs += 1
            md = doc.get("metadata") or {}
            ident = f"{doc['kind']}/{md.get('name', '?')}"
            api = doc["apiVersion"]
            group = api.rsplit("/", 1)[0] if "/" in api else ""
            key = (group, doc["kind"], md.get("namespace", ""), md.get("name"))
            if key in seen:
                print(f"  ERROR {where} {ident}: duplicate of the object in {seen[key]}")
                errors += 1
            seen[key] = where
            fname = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api)
            try:
                schema = U.schema_contents(f"{sdir}/{doc['kind'].lower()}-{fname}.json", kube_version)
            except FileNotFoundError:
                if group in builtin:
                    print(f"  ERROR {where} {ident}: {api} {doc['kind']} is not served by Kubernetes {U.major_minor(kube_version)}")
                    errors += 1
                else:
                    print(f"  CRD   {where} {ident}: {api} is not a built-in API; not schema-checked")
                    crds += 1
                continue
            v = jsonschema.validators.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ registry)
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.path))):
                print(f"  ERROR {where} {ident}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}")
                errors += 1
            if doc["kind"] == "Secret" and api == "v1":
                for k, val in (doc.get("data") or {}).items():
                    try:
                        base64.b64decode(str(val), validate=True)
                    except (binascii.Error, ValueError):
                        print(f"  ERROR {where} {ident}: data.{k} is not base64")
                        errors += 1
        print(f"#FILE {fn} objects={objs} errors={errors} crds={crds} k8s={U.major_minor(avail[-1])}")
        total_errors += errors
    return 1 if total_errors else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "validate" and argv[1] == "--kube-version":
        return validate_files(argv[3:], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
