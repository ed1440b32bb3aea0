#!/usr/bin/env python3
"""Generates, per service chart under helm/, the values.schema.json and the values table of its
README.md (between <!-- values:start --> and <!-- values:end -->) from its values.yaml.

    scripts/helm_docs.py            rewrite the generated files
    scripts/helm_docs.py --check    exit 1 (naming the files) when they are out of date

The table documents every key that carries a "# --" comment in values.yaml (continuation lines
start with "#    "), with its default; a key without one is covered by a documented ancestor, and
--check fails on a value no comment covers. The schema is draft-07, closed (additionalProperties
false) at the top level and in every object the charts define, and pins the security settings the
charts promise (non-root, read-only root filesystem, no capabilities).

Needs PyYAML (the infra venv has it: target/infra-venv/bin/python scripts/helm_docs.py).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELM = ROOT / "helm"
LIBRARY = "flightmesh-lib"
START, END = "<!-- values:start -->", "<!-- values:end -->"

SECRET_VARS = [
    "DATABASE_URL", "AMQP_URL", "REDIS_URL", "JWT_SECRET", "JWT_PREVIOUS_KEYS", "ADMIN_PASSWORD", "GROQ_API_KEY",
    "AI_API_KEY", "EMBEDDINGS_API_KEY",
]


def service_charts() -> list[Path]:
    return sorted(p.parent for p in HELM.glob("*/Chart.yaml") if p.parent.name != LIBRARY)


# ----------------------------------------------------------------------------- comments / table
KEY_RE = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(?:\s|$)")
DOC_RE = re.compile(r"^(\s*)# -- (.*)$")
CONT_RE = re.compile(r"^(\s*)#    (.*)$")


def documented_keys(text: str) -> dict[tuple[str, ...], str]:
    """Key path -> description, for every key preceded by a "# --" comment."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        m = DOC_RE.match(line)
        if m:
            pending = [m.group(2).strip()]
            continue
        m = CONT_RE.match(line)
        if m and pending is not None:
            pending.append(m.group(2).strip())
            continue
        m = KEY_RE.match(line)
        if m and not line.lstrip().startswith("- "):
            indent = len(m.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, m.group(2)))
            if pending is not None:
                docs[tuple(k for _, k in stack)] = " ".join(pending)
            pending = None
        elif line.strip() and not line.lstrip().startswith("#"):
            pending = None
    return docs


def leaves(value, path=()):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    else:
        yield path


def lookup(values, path):
    for k in path:
        values = values[k]
    return values


def type_name(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return "null"


def values_table(chart: Path) -> tuple[str, list[str]]:
    text = (chart / "values.yaml").read_text()
    values = yaml.safe_load(text)
    docs = documented_keys(text)
    problems = []
    for leaf in leaves(values):
        if not any(leaf[: len(p)] == p for p in docs):
            problems.append(f"{chart.name}/values.yaml: {'.'.join(leaf)} has no '# --' comment (nor has any parent)")
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for path, desc in docs.items():
        v = lookup(values, path)
        default = json.dumps(v, separators=(", ", ": "))
        default = default.replace("|", "\\|")
        desc = desc.replace("|", "\\|")
        rows.append(f"| `{'.'.join(path)}` | {type_name(v)} | `{default}` | {desc} |")
    return "\n".join(rows) + "\n", problems


def readme_with_table(chart: Path) -> tuple[str, str, list[str]]:
    readme = chart / "README.md"
    current = readme.read_text() if readme.exists() else ""
    table, problems = values_table(chart)
    if START not in current or END not in current:
        problems.append(f"{chart.name}/README.md: no {START} ... {END} section")
        return current, current, problems
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    wanted = f"{head}{START}\n{table}{END}{tail}"
    return current, wanted, problems


# ----------------------------------------------------------------------------- schema
def obj(props: dict, required=None, closed=True, **extra) -> dict:
    o = {"type": "object", "properties": props}
    if required:
        o["required"] = required
    if closed:
        o["additionalProperties"] = False
    o.update(extra)
    return o


STR = {"type": "string"}
BOOL = {"type": "boolean"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
NONNEG = {"type": "integer", "minimum": 0}
POS = {"type": "integer", "minimum": 1}
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
ANYOBJ = {"type": "object"}
OBJLIST = {"type": "array", "items": {"type": "object"}}
DNS_LABEL = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
QUANTITY = {"type": ["string", "integer", "number"]}
RESOURCES = obj(
    {
        "requests": {"type": "object", "properties": {"cpu": QUANTITY, "memory": QUANTITY}, "additionalProperties": QUANTITY},
        "limits": {"type": "object", "properties": {"cpu": QUANTITY, "memory": QUANTITY}, "additionalProperties": QUANTITY},
        "claims": OBJLIST,
    }
)
PROBE = obj(
    {"initialDelaySeconds": NONNEG, "periodSeconds": POS, "timeoutSeconds": POS, "failureThreshold": POS},
    required=["initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold"],
)


def schema_for(chart: Path) -> dict:
    values = yaml.safe_load((chart / "values.yaml").read_text())
    name = chart.name
    grpc = "grpc" in values["ports"]
    secret_keys = sorted(values["secrets"]["values"])
    secret_value = {"type": ["string", "null"]}
    secret_props = {k: secret_value for k in secret_keys}
    if "JWT_SECRET" in secret_props:
        secret_props["JWT_SECRET"] = {
            "type": ["string", "null"],
            "description": "Empty (generated) or at least 32 characters: production refuses shorter keys",
            "anyOf": [{"type": "null"}, {"maxLength": 0}, {"minLength": 32}],
        }
    if "DATABASE_URL" in secret_props:
        secret_props["DATABASE_URL"] = {
            "type": ["string", "null"],
            "description": "The URL of the service's own role (docs/operations.md, Database roles), never the superuser",
            "not": {"pattern": "^postgres(ql)?://postgres(:[^@]*)?@"},
        }
    if "AMQP_URL" in secret_props:
        secret_props["AMQP_URL"] = {
            "type": ["string", "null"],
            "description": "RabbitMQ's guest user only connects from localhost: use the mesh's own user",
            "not": {"pattern": "^amqps?://guest(:[^@]*)?@"},
        }
    upstream_envs = sorted(u["env"] for u in values["upstreams"].values())
    props: dict = {
        "global": {"type": "object", "description": "Helm's global values (unused)"},
        LIBRARY: {"type": "object", "description": "Values of the library chart (unused)"},
        "nameOverride": STR,
        "fullnameOverride": STR,
        "image": obj(
            {
                "repository": {"type": "string", "minLength": 1},
                "tag": {"type": ["string", "number"]},
                "digest": {
                    "type": "string",
                    "description": "Empty, or the image's digest: repository@digest replaces repository:tag",
                    "pattern": "^(sha256:[0-9a-f]{64})?$",
                },
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            required=["repository", "tag", "digest", "pullPolicy"],
        ),
        "imagePullSecrets": {"type": "array", "items": obj({"name": STR}, required=["name"])},
        "replicaCount": NONNEG,
        "autoscaling": obj(
            {
                "enabled": BOOL,
                "minReplicas": POS,
                "maxReplicas": POS,
                "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1, "maximum": 100},
                "scaleDownStabilizationSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
            },
            required=["enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"],
        ),
        "podDisruptionBudget": obj(
            {"enabled": BOOL, "maxUnavailable": {"type": ["integer", "string"], "minimum": 1, "pattern": "^[0-9]+%$"}},
            required=["enabled", "maxUnavailable"],
        ),
        "ports": obj({"grpc": PORT, "admin": PORT}, required=["grpc", "admin"])
        if grpc
        else obj({"http": PORT, "admin": PORT}, required=["http", "admin"]),
        "service": obj(
            {"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]}, "annotations": STRMAP}, required=["type"]
        ),
        "grpcLoadBalancing": {
            "enum": ["dns", "connection"],
            "description": "dns: per-request balancing over the upstreams' headless Services; connection: ClusterIP Services (with a mesh)",
        },
        "upstreams": {
            "type": "object",
            "propertyNames": DNS_LABEL,
            "additionalProperties": obj(
                {"env": {"enum": upstream_envs}, "service": DNS_LABEL, "port": PORT},
                required=["env", "service", "port"],
            ),
        },
        "config": {
            "type": "object",
            "description": "Non-secret environment variables; credentials belong in secrets.values",
            "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$", "not": {"enum": SECRET_VARS}},
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
        "secrets": obj(
            {
                "existingSecret": STR,
                "values": obj(secret_props),
                "existingSecretKeys": {
                    "type": "object",
                    "description": "Variable -> key of the existing Secret it is read from",
                    "propertyNames": {"enum": secret_keys},
                    "additionalProperties": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
                },
                "optional": {"type": "array", "items": {"enum": secret_keys}, "uniqueItems": True},
                "generate": {"type": "array", "items": {"enum": secret_keys}, "uniqueItems": True},
            },
            required=["existingSecret", "values", "existingSecretKeys"],
        ),
        "probes": obj({"liveness": PROBE, "readiness": PROBE}, required=["liveness", "readiness"]),
        "preStopSleepSeconds": {"type": "integer", "minimum": 0, "maximum": 60},
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 30},
        "resources": RESOURCES,
        "podSecurityContext": {
            "type": "object",
            "description": "The pod runs as a non-root user (runAsNonRoot true, runAsUser not 0) with RuntimeDefault seccomp",
            "properties": {
                "runAsNonRoot": {"const": True},
                "runAsUser": POS,
                "runAsGroup": POS,
                "fsGroup": POS,
                "seccompProfile": obj({"type": {"enum": ["RuntimeDefault", "Localhost"]}, "localhostProfile": STR}),
            },
            "required": ["runAsNonRoot", "runAsUser", "seccompProfile"],
        },
        "securityContext": {
            "type": "object",
            "description": "Read-only root filesystem, no privilege escalation, capabilities drop ALL",
            "properties": {
                "runAsNonRoot": {"const": True},
                "runAsUser": POS,
                "runAsGroup": POS,
                "allowPrivilegeEscalation": {"const": False},
                "privileged": {"const": False},
                "readOnlyRootFilesystem": {"const": True},
                "capabilities": obj(
                    {"drop": {"type": "array", "contains": {"const": "ALL"}}, "add": {"type": "array", "maxItems": 0}},
                    required=["drop"],
                ),
                "seccompProfile": obj({"type": {"enum": ["RuntimeDefault", "Localhost"]}, "localhostProfile": STR}),
            },
            "required": ["allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities"],
        },
        "serviceAccount": obj({"create": BOOL, "name": STR, "annotations": STRMAP}, required=["create"]),
        "podAnnotations": STRMAP,
        "podLabels": STRMAP,
        "priorityClassName": STR,
        "spreadAcrossNodes": BOOL,
        "nodeSelector": STRMAP,
        "tolerations": OBJLIST,
        "affinity": ANYOBJ,
        "extraEnv": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "networkPolicy": obj(
            {
                "enabled": BOOL,
                "allowedCallers": {"type": "array", "items": DNS_LABEL, "uniqueItems": True},
                "allowFromAnywhere": BOOL,
                "extraIngressFrom": OBJLIST,
                "metrics": obj({"enabled": BOOL, "namespaceSelector": ANYOBJ, "podSelector": ANYOBJ}, required=["enabled"]),
                "dns": OBJLIST,
                "egress": {
                    "type": "object",
                    "additionalProperties": obj({"enabled": BOOL, "port": PORT, "to": OBJLIST}, required=["enabled", "port"]),
                },
                "extraEgress": OBJLIST,
            },
            required=["enabled", "allowedCallers", "allowFromAnywhere"],
        ),
        "serviceMonitor": obj(
            {"enabled": BOOL, "interval": STR, "scrapeTimeout": STR, "labels": STRMAP}, required=["enabled"]
        ),
        "prometheusRule": obj({"enabled": BOOL, "labels": STRMAP}, required=["enabled"]),
    }
    if "migrations" in values:
        props["migrations"] = obj(
            {
                "enabled": BOOL,
                "backoffLimit": NONNEG,
                "activeDeadlineSeconds": POS,
                "ttlSecondsAfterFinished": NONNEG,
                "resources": RESOURCES,
            },
            required=["enabled"],
        )
    if "ingress" in values:
        props["ingress"] = obj(
            {
                "enabled": BOOL,
                "className": STR,
                "annotations": STRMAP,
                "hosts": {
                    "type": "array",
                    "items": obj(
                        {
                            "host": STR,
                            "paths": {
                                "type": "array",
                                "minItems": 1,
                                "items": obj(
                                    {"path": STR, "pathType": {"enum": ["Prefix", "Exact", "ImplementationSpecific"]}},
                                    required=["path", "pathType"],
                                ),
                            },
                        },
                        required=["host", "paths"],
                    ),
                },
                "tls": {"type": "array", "items": obj({"secretName": STR, "hosts": {"type": "array", "items": STR}})},
                "trustedProxies": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[0-9a-fA-F.:]+(/[0-9]{1,3})?$"},
                },
            },
            required=["enabled"],
        )
    missing = sorted(set(values) - set(props))
    if missing:
        raise SystemExit(f"{name}/values.yaml: no schema for top-level keys {missing}")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Values of the {name} chart",
        "description": "Generated by scripts/helm_docs.py from values.yaml; do not edit by hand.",
        **obj(props, required=sorted(k for k in values if k not in ("global", LIBRARY))),
        "allOf": [
            {
                "description": "The HPA scales on CPU utilisation of the request: autoscaling needs resources.requests.cpu",
                "if": {"properties": {"autoscaling": {"properties": {"enabled": {"const": True}}}}},
                "then": {"properties": {"resources": {"required": ["requests"], "properties": {"requests": {"required": ["cpu"]}}}}},
            },
            {
                "description": "maxReplicas >= minReplicas is checked by the API server; minReplicas 2 keeps a replica through a drain",
                "properties": {"autoscaling": {"properties": {"minReplicas": {"minimum": 1}}}},
            },
        ],
    }
    return schema


def schema_text(chart: Path) -> str:
    return json.dumps(schema_for(chart), indent=2) + "\n"


# ----------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale, problems = [], []
    for chart in service_charts():
        want_schema = schema_text(chart)
        path = chart / "values.schema.json"
        if not path.exists() or path.read_text() != want_schema:
            stale.append(path)
            if not check:
                path.write_text(want_schema)
        current, wanted, probs = readme_with_table(chart)
        problems += probs
        if current != wanted:
            stale.append(chart / "README.md")
            if not check:
                (chart / "README.md").write_text(wanted)
    for p in problems:
        print(f"helm_docs: {p}", file=sys.stderr)
    if check and stale:
        for p in stale:
            print(f"helm_docs: {p.relative_to(ROOT)} is out of date: run scripts/helm_docs.py", file=sys.stderr)
        return 1
    for p in stale:
        print(f"helm_docs: wrote {p.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
