#!/usr/bin/env python3
"""Tests of the deployment artifacts (run by scripts/infra-lint.sh, in the infra venv):

- the charts render what matters: HPA 2..10 at 70 % CPU, native gRPC probes (HTTP for the
  gateway) with their periods, base64 Secret data of the given inputs, non-root pods with a
  read-only root filesystem, NetworkPolicies that admit exactly the real callers, migration hook
  Jobs, headless Services and the gRPC load-balancing switch; every ci/*-values.yaml changes
  something asserted here;
- the Dockerfile's runtime stages run as a numeric non-root user and hold no compiler;
- the workflows build, push and deploy exactly the services there are charts and crates for,
  with pinned actions;
- k8s/ is what scripts/k8s_generate.py makes of the charts; chart READMEs and schemas are what
  scripts/helm_docs.py makes of values.yaml; compose.yaml builds the five services.

    target/infra-venv/bin/python scripts/infra_test.py [-v] [TestClass.test_name]

FLIGHTMESH_CHARTS_DIR may name a copy of helm/ with dependencies built (infra-lint passes one);
otherwise the tests prepare their own.
"""

from __future__ import annotations

import base64
import filecmp
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import unittest
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helm_docs  # noqa: E402
import infra_lib  # noqa: E402
import k8s_generate  # noqa: E402

ROOT = infra_lib.ROOT
SERVICES = ["flights", "bookings", "stats-worker", "ai-agent", "gateway"]
GRPC_SERVICES = ["flights", "bookings", "stats-worker", "ai-agent"]
MIGRATING = ["flights", "bookings", "gateway"]
# Who calls whom over gRPC (README "Architecture", docs/operations.md): caller -> callees.
CALLS = {
    "gateway": {"flights", "bookings", "stats-worker", "ai-agent"},
    "bookings": {"flights"},
    "flights": {"bookings"},
    "ai-agent": {"flights", "stats-worker"},
    "stats-worker": {"flights", "bookings"},
}
SECRET_KEYS = {
    "flights": {"DATABASE_URL", "AMQP_URL"},
    "bookings": {"DATABASE_URL", "AMQP_URL"},
    "stats-worker": {"REDIS_URL", "AMQP_URL"},
    "ai-agent": {"REDIS_URL", "GROQ_API_KEY", "AI_API_KEY", "EMBEDDINGS_API_KEY"},
    "gateway": {"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "JWT_PREVIOUS_KEYS", "ADMIN_PASSWORD"},
}
# Credentials every chart requires (empty in values.yaml: an install without them fails), and the
# key of the shared Secret each chart reads its DATABASE_URL from (one database role per service).
REQUIRED_KEYS = {
    "flights": {"DATABASE_URL", "AMQP_URL"},
    "bookings": {"DATABASE_URL", "AMQP_URL"},
    "stats-worker": {"AMQP_URL", "REDIS_URL"},
    "ai-agent": {"REDIS_URL"},
    "gateway": {"DATABASE_URL", "REDIS_URL"},
}
DB_SECRET_KEY = {"flights": "FLIGHTS_DATABASE_URL", "bookings": "BOOKINGS_DATABASE_URL", "gateway": "GATEWAY_DATABASE_URL"}
DB_SCHEMA = {"flights": "flights", "bookings": "bookings", "gateway": "identity"}
DIGEST = "sha256:" + "0123456789abcdef" * 4
UPSTREAM_ENV = {
    "flights": "FLIGHTS_URL", "bookings": "BOOKINGS_URL", "stats-worker": "STATS_URL", "ai-agent": "AI_URL",
}


def readme_ports() -> dict[str, tuple[int, int]]:
    """Service -> (gRPC or HTTP port, admin port) from the README's service table."""
    ports = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"^\| (flights|bookings|stats-worker|ai-agent) \| (\d+) \| (\d+) \|", line)
        if m:
            ports[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        m = re.match(r"^\| gateway \| .*REST on (\d+).* \| (\d+) \|", line)
        if m:
            ports["gateway"] = (int(m.group(1)), int(m.group(2)))
    return ports


def readme_config_vars() -> dict[str, set[str]]:
    """Section ("gateway", ..., "every service") -> variables of the README configuration tables."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- config:start -->", 1)[1].split("<!-- config:end -->", 1)[0]
    out, section = {}, None
    for line in block.splitlines():
        m = re.match(r"^#### (.+)$", line)
        if m:
            section = m.group(1).strip()
            out[section] = set()
        m = re.match(r"^\| `([A-Z0-9_]+)` \|", line)
        if m and section:
            out[section].add(m.group(1))
    return out


def values_of(chart: str) -> dict:
    return yaml.safe_load((ROOT / "helm" / chart / "values.yaml").read_text())


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def is_hook(d: dict) -> bool:
    return "helm.sh/hook" in (d["metadata"].get("annotations") or {})


def deployment(docs):
    return one(docs, "Deployment")


def container(workload: dict) -> dict:
    cs = workload["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1, "one container per pod"
    return cs[0]


def config_map(docs) -> dict:
    return one([d for d in docs if not is_hook(d)], "ConfigMap")["data"]


_RENDERS: dict = {}


def rendered(chart: str, ci: str | None = None, credentials: bool = True, **kw) -> list[dict]:
    """Objects of `helm template <chart> helm/<chart>` with the defaults or ci/<ci>-values.yaml (cached),
    both with the CI placeholder credentials of ci/credentials.yaml unless `credentials=False`."""
    key = (chart, ci, credentials, repr(sorted(kw.items())))
    if key not in _RENDERS:
        ci_dir = infra_lib.charts_dir() / chart / "ci"
        files = [ci_dir / "credentials.yaml"] if credentials else []
        if ci:
            files.append(ci_dir / f"{ci}-values.yaml")
        _RENDERS[key] = infra_lib.render(chart, values_files=files, **kw)
    return _RENDERS[key]


def secret_text(docs: list[dict]) -> str:
    """The rendered objects as YAML, with every Secret's data decoded (to search for credentials)."""
    out = []
    for d in docs:
        if d["kind"] == "Secret":
            d = {**d, "data": {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}}
        out.append(yaml.safe_dump(d))
    return "\n".join(out)


# ------------------------------------------------------------------------------------ charts
class ChartTest(unittest.TestCase):
    maxDiff = None

    def test_the_charts_are_the_services_and_depend_on_the_library(self):
        self.assertEqual(sorted(infra_lib.service_charts()), sorted(SERVICES))
        lib = yaml.safe_load((ROOT / "helm/flightmesh-lib/Chart.yaml").read_text())
        self.assertEqual(lib["type"], "library")
        for chart in SERVICES:
            meta = yaml.safe_load((ROOT / "helm" / chart / "Chart.yaml").read_text())
            self.assertEqual(
                (meta["apiVersion"], meta["name"], meta["version"], meta["appVersion"], meta["kubeVersion"]),
                ("v2", chart, "0.1.0", "0.1.0", ">=1.27.0-0"),
            )
            self.assertEqual(
                meta["dependencies"],
                [{"name": "flightmesh-lib", "version": "0.1.0", "repository": "file://../flightmesh-lib"}],
            )
            self.assertTrue((ROOT / "helm" / chart / "values.schema.json").exists())
            self.assertTrue((ROOT / "helm" / chart / "README.md").exists())

    def test_image_defaults_to_ghcr_and_the_app_version(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                c = container(deployment(rendered(chart)))
                self.assertEqual(c["image"], f"ghcr.io/flightmesh/flightmesh/{chart}:0.1.0")
                docs = rendered(chart, values={"image": {"tag": "0123abc"}})
                self.assertEqual(container(deployment(docs))["image"], f"ghcr.io/flightmesh/flightmesh/{chart}:0123abc")

    def test_hpa_scales_from_2_to_10_replicas_at_70_percent_cpu(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                hpa = one(docs, "HorizontalPodAutoscaler")
                self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], deployment(docs)["metadata"]["name"])
                self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (2, 10))
                self.assertEqual(
                    hpa["spec"]["metrics"],
                    [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
                )
                self.assertNotIn("replicas", deployment(docs)["spec"], "the HPA owns the replica count")
                self.assertIn("cpu", container(deployment(docs))["resources"]["requests"])

    def test_pdb_selects_the_serving_pods(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                pdb = one(docs, "PodDisruptionBudget")
                self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
                self.assertEqual(pdb["spec"]["selector"], deployment(docs)["spec"]["selector"])

    def test_grpc_services_use_native_grpc_probes_on_the_grpc_port(self):
        ports = readme_ports()
        for chart in GRPC_SERVICES:
            with self.subTest(chart=chart):
                c = container(deployment(rendered(chart)))
                grpc_port = ports[chart][0]
                self.assertIn({"name": "grpc", "containerPort": grpc_port, "protocol": "TCP"}, c["ports"])
                self.assertIn({"name": "admin", "containerPort": ports[chart][1], "protocol": "TCP"}, c["ports"])
                live, ready = c["livenessProbe"], c["readinessProbe"]
                self.assertEqual(live["grpc"], {"port": grpc_port, "service": "liveness"})
                self.assertEqual((live["periodSeconds"], live["failureThreshold"]), (30, 3))
                self.assertEqual(ready["grpc"]["port"], grpc_port)
                self.assertEqual(ready["grpc"].get("service", ""), "", "readiness asks the empty service name")
                self.assertEqual(ready["periodSeconds"], 10)
                self.assertNotIn("httpGet", live)
                self.assertNotIn("httpGet", ready)

    def test_gateway_uses_http_probes_livez_and_readyz_self(self):
        c = container(deployment(rendered("gateway")))
        self.assertIn({"name": "http", "containerPort": 8080, "protocol": "TCP"}, c["ports"])
        self.assertIn({"name": "admin", "containerPort": 8081, "protocol": "TCP"}, c["ports"])
        live, ready = c["livenessProbe"], c["readinessProbe"]
        self.assertEqual(live["httpGet"], {"path": "/livez", "port": "http"})
        self.assertEqual(ready["httpGet"], {"path": "/readyz/self", "port": "http"})
        self.assertEqual((live["periodSeconds"], live["failureThreshold"], ready["periodSeconds"]), (30, 3, 10))

    def test_ports_and_listen_addresses_match_the_readme(self):
        ports = readme_ports()
        self.assertEqual(sorted(ports), sorted(SERVICES))
        for chart in SERVICES:
            with self.subTest(chart=chart):
                cm = config_map(rendered(chart))
                if chart in GRPC_SERVICES:
                    self.assertEqual(cm["GRPC_ADDR"], f"0.0.0.0:{ports[chart][0]}")
                    self.assertEqual(cm["ADMIN_ADDR"], f"0.0.0.0:{ports[chart][1]}")
                else:
                    self.assertEqual(cm["HTTP_ADDR"], f"0.0.0.0:{ports[chart][0]}")
                    self.assertEqual(cm["ADMIN_ADDR"], f"0.0.0.0:{ports[chart][1]}")

    def test_pods_run_as_non_root_with_a_read_only_root_filesystem(self):
        for chart in SERVICES:
            docs = rendered(chart)
            for w in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
                with self.subTest(chart=chart, workload=w["metadata"]["name"]):
                    pod = w["spec"]["template"]["spec"]
                    psc = pod["securityContext"]
                    self.assertIs(psc["runAsNonRoot"], True)
                    self.assertIsInstance(psc["runAsUser"], int)
                    self.assertNotEqual(psc["runAsUser"], 0)
                    self.assertEqual(psc["seccompProfile"], {"type": "RuntimeDefault"})
                    self.assertIs(pod["automountServiceAccountToken"], False)
                    csc = container(w)["securityContext"]
                    self.assertIs(csc["readOnlyRootFilesystem"], True)
                    self.assertIs(csc["allowPrivilegeEscalation"], False)
                    self.assertIs(csc.get("privileged", False), False)
                    self.assertEqual(csc["capabilities"], {"drop": ["ALL"]})
                    self.assertNotEqual(csc.get("runAsUser", 1), 0)
                    mounts = {m["mountPath"] for m in container(w).get("volumeMounts", [])}
                    self.assertIn("/tmp", mounts, "a writable /tmp on the read-only root filesystem")

    def test_schema_refuses_insecure_or_invalid_values(self):
        bad = [
            ("flights", {"securityContext": {"readOnlyRootFilesystem": False}}),
            ("flights", {"podSecurityContext": {"runAsUser": 0}}),
            ("bookings", {"podSecurityContext": {"runAsNonRoot": False}}),
            ("stats-worker", {"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}),
            ("gateway", {"secrets": {"values": {"JWT_SECRET": "too-short"}}}),
            ("gateway", {"config": {"JWT_SECRET": "credentials-belong-in-secrets-values-not-config"}}),
            ("ai-agent", {"grpcLoadBalancing": "round-robin"}),
            ("flights", {"replicas": 3}),
        ]
        for chart, values in bad:
            with self.subTest(chart=chart, values=values):
                r = infra_lib.helm_template(chart, values=values, check=False)
                self.assertNotEqual(r.returncode, 0, f"{chart} accepted {values}")
                self.assertIn("schema", r.stderr)

    def test_graceful_termination_outlasts_the_drain(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                pod = deployment(docs)["spec"]["template"]["spec"]
                pre = container(deployment(docs))["lifecycle"]["preStop"]["sleep"]["seconds"]
                drain = int(config_map(docs)["DRAIN_DELAY"].rstrip("s"))
                # preStop, the drain, in-flight calls (CALL_GRACE, 10 s), background tasks (20 s).
                self.assertGreater(pod["terminationGracePeriodSeconds"], pre + drain + 10 + 20)
                old = rendered(chart, kube_version=infra_lib.MIN_KUBE_VERSION)
                self.assertNotIn("lifecycle", container(deployment(old)), "no sleep action before Kubernetes 1.30")

    def test_secret_data_is_the_base64_of_the_given_values(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                inputs = {k: f"{k.lower()}://user:p@ss w/ord+{chart}?x=1&y=%2f" for k in SECRET_KEYS[chart]}
                if "JWT_SECRET" in inputs:
                    inputs["JWT_SECRET"] = "j" * 40 + "/+=!"
                docs = rendered(chart, values={"secrets": {"values": inputs}})
                secret = one([d for d in docs if not is_hook(d)], "Secret")
                self.assertEqual(secret["type"], "Opaque")
                self.assertEqual(set(secret["data"]), set(inputs))
                for k, v in inputs.items():
                    self.assertEqual(base64.b64decode(secret["data"][k], validate=True).decode(), v)
                self.assertNotIn("stringData", secret)
                env = {e["name"]: e for e in container(deployment(docs))["env"]}
                for k in inputs:
                    self.assertEqual(env[k]["valueFrom"]["secretKeyRef"], {"name": secret["metadata"]["name"], "key": k})
                cm = config_map(docs)
                self.assertFalse(set(cm) & set(SECRET_KEYS[chart]), "no credential in the ConfigMap")

    def test_empty_credentials_are_left_out_and_the_jwt_secret_is_generated(self):
        docs = rendered("ai-agent")
        secret = one(docs, "Secret")
        self.assertEqual(set(secret["data"]), {"REDIS_URL"}, "no Groq key: the agent answers offline")
        self.assertNotIn("GROQ_API_KEY", {e["name"] for e in container(deployment(docs))["env"]})
        gw = one([d for d in rendered("gateway") if not is_hook(d)], "Secret")
        jwt = base64.b64decode(gw["data"]["JWT_SECRET"], validate=True).decode()
        self.assertEqual(len(jwt), 48)
        self.assertNotIn("ADMIN_PASSWORD", gw["data"])

    def test_the_gateway_runs_the_production_policy(self):
        cm = config_map(rendered("gateway"))
        self.assertEqual(cm["ENVIRONMENT"], "production")
        self.assertEqual(cm["ACCESS_POLICY"], "production")
        self.assertEqual(cm["RATE_LIMIT_STORE"], "redis")
        self.assertEqual(cm["LOG_FORMAT"], "json")
        self.assertNotIn("TRUST_FORWARDED_FOR", cm, "removed: the gateway refuses it")
        self.assertNotIn("TRUSTED_PROXIES", cm, "only behind the Ingress")
        self.assertNotIn("PUBLIC_METRICS", cm, "production keeps /metrics off the public port")

    def test_bookings_enforces_the_same_policy_as_the_gateway(self):
        # Ownership of bookings is enforced in bookings too (ADR 0010): both read ACCESS_POLICY.
        self.assertEqual(config_map(rendered("bookings"))["ACCESS_POLICY"], "production")
        self.assertEqual(config_map(rendered("gateway"))["ACCESS_POLICY"], "production")

    def test_config_is_documented_in_the_readme(self):
        documented = readme_config_vars()
        for chart in SERVICES:
            with self.subTest(chart=chart):
                known = documented[chart] | documented["every service"]
                self.assertFalse(set(config_map(rendered(chart))) - known, "variables the service does not read")
                self.assertFalse(set(values_of(chart)["config"]) - known)
                secret_vars = {v for v in known if v in helm_docs.SECRET_VARS}
                self.assertEqual(SECRET_KEYS[chart], secret_vars, "every credential the service reads is a secret key")

    def test_grpc_load_balancing_dns_targets_the_headless_services(self):
        # dns:///host:port makes the client re-resolve the name and balance per request
        # (libs/runtime/src/channel.rs); the headless Service resolves to every ready pod.
        ports = readme_ports()
        for chart in SERVICES:
            with self.subTest(chart=chart):
                cm = config_map(rendered(chart))
                self.assertEqual(values_of(chart)["grpcLoadBalancing"], "dns")
                self.assertEqual({e for e in cm if e.endswith("_URL")}, {UPSTREAM_ENV[c] for c in CALLS[chart]})
                for callee in CALLS[chart]:
                    self.assertEqual(cm[UPSTREAM_ENV[callee]], f"dns:///{callee}-headless:{ports[callee][0]}")

    def test_grpc_services_have_a_headless_service(self):
        for chart in GRPC_SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                svc = one(docs, "Service", chart)
                headless = one(docs, "Service", f"{chart}-headless")
                self.assertEqual(headless["spec"]["clusterIP"], "None")
                self.assertEqual(headless["spec"]["selector"], svc["spec"]["selector"])
                self.assertEqual(headless["spec"]["ports"], svc["spec"]["ports"])
                self.assertEqual(svc["spec"]["selector"], deployment(docs)["spec"]["selector"]["matchLabels"])
        self.assertEqual([s["metadata"]["name"] for s in by_kind(rendered("gateway"), "Service")], ["gateway"])

    def test_migrations_run_in_pre_install_pre_upgrade_hook_jobs(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                jobs = by_kind(docs, "Job")
                if chart not in MIGRATING:
                    self.assertEqual(jobs, [])
                    self.assertNotIn("MIGRATE_ON_START", config_map(docs))
                    continue
                job = one(docs, "Job")
                ann = job["metadata"]["annotations"]
                self.assertEqual(ann["helm.sh/hook"], "pre-install,pre-upgrade")
                c = container(job)
                self.assertEqual(c["command"] + c["args"], [f"/usr/local/bin/{chart}", "migrate"])
                self.assertEqual(c["image"], container(deployment(docs))["image"])
                self.assertEqual(config_map(docs)["MIGRATE_ON_START"], "false")
                # Hooks run before the release's Secret exists: the Job reads a hook Secret created first.
                refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
                hook_secret = one(docs, "Secret", f"{chart}-migrate")
                self.assertEqual(refs, {f"{chart}-migrate"})
                self.assertLess(int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]), int(ann["helm.sh/hook-weight"]))
                self.assertEqual(hook_secret["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade")
                self.assertNotEqual(
                    job["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component"), "server",
                    "the Job's pod is no endpoint of the Service",
                )

    # -------------------------------------------------------------------- NetworkPolicies
    def policy(self, chart, **kw):
        docs = rendered(chart, **kw)
        np = one(docs, "NetworkPolicy")
        self.assertEqual(sorted(np["spec"]["policyTypes"]), ["Egress", "Ingress"], "deny by default, both ways")
        return np

    @staticmethod
    def callers_on(np, port) -> set | None:
        """App names admitted on `port` (None: any source)."""
        names: set = set()
        for rule in np["spec"]["ingress"]:
            if not any(p["port"] == port for p in rule.get("ports", [])):
                continue
            if "from" not in rule:
                return None
            for peer in rule["from"]:
                if set(peer) == {"podSelector"}:
                    names.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                else:
                    names.add(repr(peer))
        return names

    def test_flights_admits_exactly_its_real_callers(self):
        np = self.policy("flights")
        # stats-worker is a caller too: GET /api/v1/stats/taxes asks flights for each destination's tax.
        self.assertEqual(self.callers_on(np, 50051), {"gateway", "bookings", "ai-agent", "stats-worker"})
        self.assertEqual(values_of("flights")["networkPolicy"]["allowedCallers"], ["gateway", "bookings", "ai-agent", "stats-worker"])
        admin = [r for r in np["spec"]["ingress"] if any(p["port"] == 51051 for p in r["ports"])]
        self.assertEqual(
            admin,
            [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
              "ports": [{"port": 51051, "protocol": "TCP"}]}],
        )
        self.assertEqual(len(np["spec"]["ingress"]), 2, "nothing else gets in")

    def test_every_service_admits_exactly_the_services_that_call_it(self):
        ports = readme_ports()
        for chart in GRPC_SERVICES:
            with self.subTest(chart=chart):
                callers = {caller for caller, callees in CALLS.items() if chart in callees}
                self.assertEqual(self.callers_on(self.policy(chart), ports[chart][0]), callers)
        self.assertIsNone(self.callers_on(self.policy("gateway"), 8080), "the gateway is the door: open on 8080")
        self.assertEqual(
            self.callers_on(self.policy("gateway"), 8081),
            {repr({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}})},
            "the admin port (/metrics) admits Prometheus only",
        )

    def test_egress_allows_the_upstreams_and_backing_services_only(self):
        ports = readme_ports()
        backing = {
            "flights": {5432, 5672}, "bookings": {5432, 5672}, "stats-worker": {6379, 5672},
            "ai-agent": {6379, 443}, "gateway": {5432, 6379},
        }
        for chart in SERVICES:
            with self.subTest(chart=chart):
                np = self.policy(chart)
                upstreams, others, dns = {}, set(), False
                for rule in np["spec"]["egress"]:
                    rport = {p["port"] for p in rule["ports"]}
                    if rport == {53}:
                        dns = True
                    elif rule.get("to") and all(set(t) == {"podSelector"} for t in rule["to"]):
                        for t in rule["to"]:
                            upstreams[t["podSelector"]["matchLabels"]["app.kubernetes.io/name"]] = rport
                    else:
                        others |= rport
                self.assertTrue(dns)
                self.assertEqual(upstreams, {c: {ports[c][0]} for c in CALLS[chart]})
                self.assertEqual(others, backing[chart])

    def test_callers_and_upstreams_agree_across_the_charts(self):
        for chart in SERVICES:
            for callee in values_of(chart)["upstreams"]:
                with self.subTest(caller=chart, callee=callee):
                    self.assertIn(chart, values_of(callee)["networkPolicy"]["allowedCallers"])
            for caller in values_of(chart)["networkPolicy"]["allowedCallers"]:
                with self.subTest(callee=chart, caller=caller):
                    self.assertIn(chart, values_of(caller)["upstreams"])

    # -------------------------------------------------------------------- ci/*-values.yaml
    def check_autoscaling_off(self, chart):
        docs = rendered(chart, "autoscaling-off")
        self.assertEqual(by_kind(docs, "HorizontalPodAutoscaler"), [])
        self.assertEqual(deployment(docs)["spec"]["replicas"], 3)
        cm = config_map(docs)
        ports = readme_ports()
        for callee in CALLS[chart]:
            self.assertEqual(cm[UPSTREAM_ENV[callee]], f"http://{callee}:{ports[callee][0]}")

    def check_existing_secret(self, chart):
        docs = rendered(chart, "existing-secret")
        self.assertEqual(by_kind(docs, "Secret"), [], "neither the Secret nor the hook Secret")
        optional = set(values_of(chart)["secrets"]["optional"])
        for w in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(w)["env"] if "valueFrom" in e}
            self.assertEqual(set(refs), SECRET_KEYS[chart])
            for k, ref in refs.items():
                self.assertEqual(ref["name"], "flightmesh-secrets")
                self.assertEqual(ref.get("optional", False), k in optional)
                want = DB_SECRET_KEY[chart] if k == "DATABASE_URL" else k
                self.assertEqual(ref["key"], want, "each service reads its own database role's URL")
        # A Secret managed elsewhere needs no credentials in the values.
        bare = rendered(chart, "existing-secret", credentials=False)
        self.assertEqual(by_kind(bare, "Secret"), [])
        self.assertEqual(container(deployment(bare))["env"], container(deployment(docs))["env"])
        sm = one(docs, "ServiceMonitor")
        self.assertEqual(sm["spec"]["endpoints"][0]["port"], "admin", "every service is scraped on its admin port")
        self.assertEqual(sm["spec"]["endpoints"][0]["path"], "/metrics")
        self.assertEqual(sm["metadata"]["labels"]["release"], "prometheus")
        self.check_prometheus_rule(chart, docs)

    def check_prometheus_rule(self, chart, docs):
        """The PrometheusRule carries the chart's rules/slo.yaml, which promtool accepts."""
        rule = one(docs, "PrometheusRule")
        self.assertEqual(rule["metadata"]["labels"]["release"], "prometheus")
        source = yaml.safe_load((ROOT / "helm" / chart / "rules" / "slo.yaml").read_text())
        self.assertEqual(rule["spec"]["groups"], source["groups"])
        self.assertEqual(by_kind(rendered(chart), "PrometheusRule"), [], "off by default (needs the CRD)")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump(rule["spec"], f)
            f.flush()
            checked = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def check_ingress(self, chart):
        docs = rendered(chart, "ingress")
        ing = one(docs, "Ingress")
        self.assertEqual(ing["spec"]["ingressClassName"], "nginx")
        self.assertEqual(ing["spec"]["tls"], [{"hosts": ["api.flightmesh.example"], "secretName": "flightmesh-api-tls"}])
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        self.assertEqual(backend, {"name": "gateway", "port": {"name": "http"}})
        self.assertEqual(config_map(docs)["TRUSTED_PROXIES"], "10.244.0.0/16")
        self.assertNotIn("TRUST_FORWARDED_FOR", config_map(docs))
        self.assertEqual(one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"], "admin")
        self.assertEqual(
            self.callers_on(one(docs, "NetworkPolicy"), 8080),
            {repr({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}})},
        )
        self.assertEqual(
            self.callers_on(one(docs, "NetworkPolicy"), 8081),
            {repr({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}})},
        )

    def check_migrations_off(self, chart):
        docs = rendered(chart, "migrations-off")
        self.assertEqual(by_kind(docs, "Job"), [])
        self.assertEqual([s["metadata"]["name"] for s in by_kind(docs, "Secret")], [chart])
        self.assertEqual(config_map(docs)["MIGRATE_ON_START"], "true")

    def test_every_ci_value_set_changes_what_a_test_asserts(self):
        checks = {
            "autoscaling-off": self.check_autoscaling_off,
            "existing-secret": self.check_existing_secret,
            "ingress": self.check_ingress,
            "migrations-off": self.check_migrations_off,
        }
        sets = sorted((ROOT / "helm").glob("*/ci/*-values.yaml"))
        self.assertTrue(sets)
        for f in sets:
            chart, name = f.parent.parent.name, f.name.removesuffix("-values.yaml")
            with self.subTest(values=str(f.relative_to(ROOT))):
                self.assertIn(name, checks, f"{f.name}: add an assertion of what it changes to this test")
                checks[name](chart)
        for chart in SERVICES:
            self.assertGreaterEqual(len(list((ROOT / "helm" / chart / "ci").glob("*-values.yaml"))), 2, chart)


# ------------------------------------------------------------------------------------ deployment defaults
class DeploymentDefaultsTest(unittest.TestCase):
    """Defaults that do not only work on a laptop: no credential in values.yaml, an install without
    them fails naming each value, one database role per service, images pinned by digest."""

    def test_the_defaults_hold_no_credentials(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                text = (ROOT / "helm" / chart / "values.yaml").read_text()
                self.assertEqual({k: v for k, v in values_of(chart)["secrets"]["values"].items() if v}, {})
                for laptop in ("postgres://postgres", "postgres@", "guest:guest", "redis://redis"):
                    self.assertNotIn(laptop, text)

    def test_install_without_credentials_fails_naming_each_missing_value(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                v = values_of(chart)["secrets"]
                self.assertEqual(set(v["values"]) - set(v["optional"]) - set(v["generate"]), REQUIRED_KEYS[chart])
                r = infra_lib.helm_template(chart, check=False)
                self.assertNotEqual(r.returncode, 0, f"{chart} rendered without credentials")
                for key in REQUIRED_KEYS[chart]:
                    self.assertIn(f"secrets.values.{key} is required", r.stderr)
                self.assertIn("secrets.existingSecret", r.stderr, "the message names the alternative")
                for optional in set(v["optional"]) | set(v["generate"]):
                    self.assertNotIn(f"secrets.values.{optional} ", r.stderr)
                # One credential given: the message names only the others.
                given = sorted(REQUIRED_KEYS[chart])[0]
                r = infra_lib.helm_template(
                    chart, values={"secrets": {"values": {given: "scheme://user:pw@host/x"}}}, check=False
                )
                missing = REQUIRED_KEYS[chart] - {given}
                self.assertEqual(r.returncode != 0, bool(missing), r.stderr)
                self.assertNotIn(f"secrets.values.{given} ", r.stderr)
                for key in missing:
                    self.assertIn(f"secrets.values.{key} is required", r.stderr)

    def test_helm_install_refuses_too(self):
        # `helm install` (client-side dry run: no cluster here) goes through the same checks.
        charts = infra_lib.charts_dir()
        for chart in ("flights", "gateway"):
            with self.subTest(chart=chart):
                cmd = [infra_lib.venv_bin("helm"), "install", chart, str(charts / chart), "--dry-run=client",
                       "--namespace", "flightmesh"]
                env = infra_lib.helm_env(charts.parent / ".helm")
                r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("secrets.values.DATABASE_URL is required", r.stderr)
                ok = subprocess.run(cmd + ["-f", str(charts / chart / "ci" / "credentials.yaml")],
                                    env=env, capture_output=True, text=True)
                self.assertEqual(ok.returncode, 0, ok.stderr)

    def test_schema_refuses_the_superuser_and_the_guest_user(self):
        bad = [
            ("flights", "DATABASE_URL", "postgres://postgres@postgresql:5432/flightmesh"),
            ("bookings", "DATABASE_URL", "postgresql://postgres:secret@db/flightmesh"),
            ("gateway", "DATABASE_URL", "postgres://postgres:pw@db:5432/flightmesh"),
            ("flights", "AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f"),
            ("stats-worker", "AMQP_URL", "amqps://guest:x@rabbitmq:5671/%2f"),
        ]
        for chart, key, url in bad:
            with self.subTest(chart=chart, url=url):
                r = infra_lib.helm_template(chart, values={"secrets": {"values": {key: url}}}, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"/secrets/values/{key}", r.stderr)

    def test_each_service_connects_as_its_own_database_role(self):
        users = {}
        for chart in DB_SECRET_KEY:
            with self.subTest(chart=chart):
                docs = rendered(chart)
                for secret in by_kind(docs, "Secret"):  # the Secret and the migration hook's
                    url = base64.b64decode(secret["data"]["DATABASE_URL"]).decode()
                    user = url.split("://", 1)[1].split(":", 1)[0]
                    self.assertEqual(user, f"flightmesh_{chart}", secret["metadata"]["name"])
                    users.setdefault(chart, set()).add(user)
                self.assertEqual(len(by_kind(docs, "Secret")), 2)
        self.assertEqual(len(set().union(*users.values())), 3, "three roles, one per schema")
        ci = (ROOT / "helm/flights/ci/credentials.yaml").read_text()
        self.assertIn("libs/db/sql/database-roles.sql", ci)

    def test_no_superuser_and_no_guest_anywhere_in_the_renders(self):
        sets = [(chart, None) for chart in SERVICES] + [
            (f.parent.parent.name, f.name.removesuffix("-values.yaml")) for f in sorted((ROOT / "helm").glob("*/ci/*-values.yaml"))
        ]
        for chart, ci in sets:
            with self.subTest(chart=chart, ci=ci):
                text = secret_text(rendered(chart, ci))
                self.assertNotRegex(text, r"postgres(ql)?://postgres[:@]")
                self.assertNotIn("guest:guest", text)
                self.assertNotIn("guest@", text)
        k8s = "\n".join(p.read_text() for p in sorted((ROOT / "k8s").rglob("*.yaml")))
        self.assertNotIn("guest:guest", k8s)
        self.assertNotRegex(k8s, r"postgres(ql)?://postgres[:@]")

    def test_image_digest_pins_the_image(self):
        for chart in SERVICES:
            with self.subTest(chart=chart):
                docs = rendered(chart, values={"image": {"tag": "0123abc", "digest": DIGEST}})
                images = {container(w)["image"] for w in by_kind(docs, "Deployment") + by_kind(docs, "Job")}
                self.assertEqual(images, {f"ghcr.io/flightmesh/flightmesh/{chart}@{DIGEST}"})
                self.assertEqual(values_of(chart)["image"]["digest"], "", "a tag by default")
        for digest in ("sha256:abc", "0123456789abcdef" * 4, "sha512:" + "0" * 64, "latest"):
            with self.subTest(digest=digest):
                r = infra_lib.helm_template("flights", values={"image": {"digest": digest}}, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("/image/digest", r.stderr)

    def test_the_release_deploys_the_digest_its_build_pushed(self):
        release = workflow("release.yml")
        image = release["jobs"]["image"]
        build = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
        self.assertEqual(build["id"], "build")
        idx = image["steps"].index(build)
        record, upload = image["steps"][idx + 1], image["steps"][idx + 2]
        self.assertEqual(record["env"]["DIGEST"], "${{ steps.build.outputs.digest }}")
        self.assertIn('"$RUNNER_TEMP/digest/$SERVICE"', record["run"])
        self.assertIn("$GITHUB_STEP_SUMMARY", record["run"])
        self.assertIn("^sha256:[0-9a-f]{64}$", record["run"], "no digest, no deploy")
        self.assertTrue(upload["uses"].startswith("actions/upload-artifact@"))
        self.assertEqual(upload["with"]["name"], "digest-${{ matrix.service }}")
        digests = release["jobs"]["digests"]
        self.assertEqual(digests["needs"], "image")
        self.assertEqual(digests["outputs"]["digests"], "${{ steps.collect.outputs.digests }}")
        download = digests["steps"][0]
        self.assertTrue(download["uses"].startswith("actions/download-artifact@"))
        self.assertEqual(download["with"]["pattern"], "digest-*")
        collect = next(s for s in digests["steps"] if s.get("id") == "collect")
        self.assertIn("$GITHUB_OUTPUT", collect["run"])
        self.assertIn("$GITHUB_STEP_SUMMARY", collect["run"])
        # The collect script turns the per-service files into the JSON the deploy job indexes.
        with tempfile.TemporaryDirectory() as tmp:
            for i, service in enumerate(SERVICES):
                (Path(tmp) / service).write_text(f"sha256:{i:064d}\n")
            out, summary = Path(tmp, "out"), Path(tmp, "summary")
            script = collect["run"]
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "DIR": tmp, "GITHUB_OUTPUT": str(out),
                                    "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SHA": "abc"})
            if r.returncode == 127:
                self.skipTest("jq is not installed")
            self.assertEqual(r.returncode, 0, r.stderr)
            key, _, value = out.read_text().strip().partition("=")
            self.assertEqual(key, "digests")
            self.assertEqual(json.loads(value), {s: f"sha256:{i:064d}" for i, s in enumerate(SERVICES)})
            self.assertIn(f"| gateway | `sha256:{4:064d}` |", summary.read_text())
        deploy = release["jobs"]["deploy"]
        self.assertEqual(deploy["needs"], ["digests", "chart"])
        self.assertEqual(deploy["env"]["DIGEST"], "${{ fromJSON(needs.digests.outputs.digests)[matrix.service] }}")
        helm = next(s for s in deploy["steps"] if "helm upgrade" in s.get("run", ""))
        self.assertIn('--set image.digest="$DIGEST"', " ".join(helm["run"].replace("\\\n", " ").split()))
        docs = (ROOT / "docs/operations.md").read_text()
        self.assertIn("image.digest", docs)


# ------------------------------------------------------------------------------------ Dockerfile
def dockerfile_stages(path: Path) -> list[dict]:
    """Stages of a Dockerfile: name, base, instructions (continuations joined, comments dropped)."""
    lines, cur = [], ""
    for raw in path.read_text().splitlines():
        if not cur and (raw.lstrip().startswith("#") or not raw.strip()):
            continue
        if raw.lstrip().startswith("#"):
            continue
        cur += raw.rstrip("\\").strip() + " " if raw.endswith("\\") else raw.strip()
        if not raw.endswith("\\"):
            lines.append(cur.strip())
            cur = ""
    stages = []
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            m = re.match(r"^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
            stages.append({"base": m.group(1), "name": m.group(2), "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((word.upper(), rest.strip()))
    return stages


COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|rustc|cargo|rustup|build-essential|apt-get|apt|apk|dnf|yum|make)\b")


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.path = ROOT / "Dockerfiles" / "Dockerfile"
        self.stages = dockerfile_stages(self.path)
        self.named = {s["name"]: s for s in self.stages if s["name"]}

    def chain(self, stage):
        """The stage and the stages it is built FROM, down to an external image."""
        out = [stage]
        while stage["base"] in self.named:
            stage = self.named[stage["base"]]
            out.append(stage)
        return out

    def test_one_runtime_target_per_service(self):
        self.assertEqual(sorted(s for s in self.named if s in SERVICES), sorted(SERVICES))
        self.assertIn(self.stages[-1]["name"], SERVICES, "the last stage is a runtime stage")

    def test_runtime_stages_run_as_a_numeric_non_root_user(self):
        for name in SERVICES:
            with self.subTest(target=name):
                users = [arg for ins, arg in self.named[name]["instructions"] if ins == "USER"]
                self.assertTrue(users, "the stage sets USER itself")
                uid, _, gid = users[-1].partition(":")
                self.assertTrue(uid.isdigit() and int(uid) != 0, users[-1])
                self.assertTrue(not gid or (gid.isdigit() and int(gid) != 0), users[-1])
        last = [arg for ins, arg in self.stages[-1]["instructions"] if ins == "USER"]
        self.assertEqual(last[-1], "65532:65532")

    def test_runtime_stages_contain_no_compiler(self):
        for name in SERVICES:
            with self.subTest(target=name):
                chain = self.chain(self.named[name])
                base = chain[-1]["base"]
                self.assertTrue(base.startswith("gcr.io/distroless/cc-debian12:"), base)
                self.assertNotIn("rust", base)
                for stage in chain:
                    for ins, arg in stage["instructions"]:
                        self.assertNotEqual(ins, "RUN", "nothing runs in a runtime stage (there is no shell)")
                        if ins in ("COPY", "ADD"):
                            self.assertRegex(arg, rf"--from=builder\b.* /out/{re.escape(name)} /usr/local/bin/{re.escape(name)}$")
                        else:
                            self.assertIsNone(COMPILERS.search(arg) if ins not in ("LABEL",) else None, f"{ins} {arg}")

    def test_runtime_stages_expose_the_ports_and_run_the_binary(self):
        ports = readme_ports()
        for name in SERVICES:
            with self.subTest(target=name):
                ins = dict(self.named[name]["instructions"])
                want = set(ports[name])
                self.assertEqual({int(p) for p in ins["EXPOSE"].split()}, want)
                self.assertEqual(ins["ENTRYPOINT"], f'["/usr/local/bin/{name}"]')
                self.assertEqual(ins["CMD"], '["serve"]')
                self.assertIn(f'org.opencontainers.image.title="flightmesh-{name}"', ins["LABEL"])
        shared = " ".join(arg for ins, arg in self.named["runtime"]["instructions"] if ins == "LABEL")
        for label in ("source", "revision", "version", "licenses"):
            self.assertIn(f"org.opencontainers.image.{label}=", shared)

    def test_builds_are_pinned_locked_and_cached(self):
        for s in self.stages:
            if s["base"] in self.named:
                continue
            with self.subTest(base=s["base"]):
                self.assertRegex(s["base"], r"^[a-z0-9./-]+:[0-9][\w.-]*(-[\w.-]+)?$|^[a-z0-9./-]+:nonroot$")
                self.assertNotIn(":latest", s["base"])
        text = self.path.read_text()
        self.assertIn("cargo chef cook --release --locked", text)
        self.assertIn("cargo build --release --locked", text)
        self.assertRegex(text, r"cargo install cargo-chef --locked --version \d+\.\d+\.\d+")
        builder = [ins for ins, _ in self.named["builder"]["instructions"]]
        sources = builder.index("COPY", builder.index("COPY") + 1)
        self.assertLess(builder.index("RUN"), sources, "dependencies are cooked before the sources come in")

    def test_dockerignore_keeps_the_context_small(self):
        ignored = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
        for entry in ("target/", ".git/", "bench/", "helm/", "k8s/", "docs/"):
            self.assertIn(entry, ignored)
        for needed in ("proto", "libs", "services", "tools", "Cargo.toml", "Cargo.lock"):
            self.assertFalse(any(i.rstrip("/") == needed for i in ignored), needed)


# ------------------------------------------------------------------------------------ workflows
def workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def service_binaries() -> list[str]:
    bins = []
    for manifest in sorted((ROOT / "services").glob("*/Cargo.toml")):
        data = tomllib.loads(manifest.read_text())
        bins += [b["name"] for b in data.get("bin", [])]
    return bins


class WorkflowTest(unittest.TestCase):
    def setUp(self):
        self.release = workflow("release.yml")
        self.ci = workflow("ci.yml")

    def steps(self, job):
        return self.release["jobs"][job]["steps"]

    def test_release_matrix_is_the_charts_and_the_crates(self):
        crates = sorted(service_binaries())
        self.assertEqual(crates, sorted(SERVICES))
        self.assertEqual(sorted(infra_lib.service_charts()), crates)
        for job in ("image", "chart", "deploy"):
            self.assertEqual(sorted(self.release["jobs"][job]["strategy"]["matrix"]["service"]), crates, job)

    def test_charts_are_pushed_to_ghcr_as_oci_artifacts_with_the_image_tag_as_app_version(self):
        job = self.release["jobs"]["chart"]
        self.assertEqual(job["needs"], "image", "the chart names an image that exists")
        self.assertEqual(job["permissions"]["packages"], "write")
        push = next(s for s in job["steps"] if "helm push" in s.get("run", ""))
        self.assertEqual(push["env"]["SERVICE"], "${{ matrix.service }}")
        cmd = " ".join(push["run"].replace("\\\n", " ").split())
        self.assertIn('version=$(scripts/chart-version.sh "$SERVICE" "$GITHUB_SHA")', cmd)
        self.assertIn('helm dependency build "helm/$SERVICE"', cmd, "the library chart is vendored")
        self.assertIn('helm package "helm/$SERVICE" --version "$version" --app-version "$GITHUB_SHA"', cmd)
        self.assertIn('helm push "$RUNNER_TEMP/charts/$SERVICE-$version.tgz" "oci://ghcr.io/${OWNER,,}/charts"', cmd)
        self.assertIn("helm registry login ghcr.io", cmd)
        readme = (ROOT / "README.md").read_text()
        self.assertIn("oci://ghcr.io/", readme, "the README shows installing from the registry")

    def test_a_packaged_chart_carries_the_library_the_rules_and_the_image_tag(self):
        sha = "0123456789abcdef0123456789abcdef01234567"
        for chart in SERVICES:
            version = subprocess.run(["scripts/chart-version.sh", chart, sha], cwd=ROOT, check=True,
                                     capture_output=True, text=True).stdout.strip()
            self.assertRegex(version, r"^\d+\.\d+\.\d+-g0123456789ab$")
            with tempfile.TemporaryDirectory() as tmp:
                src = infra_lib.charts_dir() / chart
                r = subprocess.run(["helm", "package", str(src), "--version", version, "--app-version", sha,
                                    "--destination", tmp], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                with tarfile.open(Path(tmp) / f"{chart}-{version}.tgz") as tgz:
                    names = tgz.getnames()
                    meta = yaml.safe_load(tgz.extractfile(f"{chart}/Chart.yaml").read())
            self.assertEqual((meta["version"], meta["appVersion"]), (version, sha))
            self.assertTrue(any(n.startswith(f"{chart}/charts/flightmesh-lib") for n in names), names)
            self.assertIn(f"{chart}/rules/slo.yaml", names)
            self.assertFalse([n for n in names if n.endswith(".test.yaml")], "rule tests stay out of the package")

    def test_images_are_pushed_to_ghcr_per_service_tagged_with_the_commit(self):
        job = self.release["jobs"]["image"]
        self.assertEqual(job["needs"], "test")
        self.assertEqual(self.release["jobs"]["test"]["uses"], "./.github/workflows/ci.yml")
        self.assertEqual(job["permissions"]["packages"], "write")
        meta = next(s for s in job["steps"] if s.get("id") == "meta")
        self.assertEqual(meta["env"]["IMAGE"], "ghcr.io/${{ github.repository }}/${{ matrix.service }}")
        self.assertIn('image=${IMAGE,,}', meta["run"])
        build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
        w = build["with"]
        self.assertEqual(w["file"], "Dockerfiles/Dockerfile")
        self.assertEqual(w["target"], "${{ matrix.service }}")
        self.assertIn("SERVICES=${{ matrix.service }}", w["build-args"])
        self.assertEqual(w["tags"], "${{ steps.meta.outputs.image }}:${{ github.sha }}")
        self.assertIs(w["push"], True)
        self.assertEqual(w["cache-from"], "type=gha,scope=${{ matrix.service }}")
        self.assertEqual(w["cache-to"], "type=gha,mode=max,scope=${{ matrix.service }}")
        # Dockerfile targets exist for every matrix entry.
        targets = {s["name"] for s in dockerfile_stages(ROOT / "Dockerfiles" / "Dockerfile")}
        self.assertTrue(set(job["strategy"]["matrix"]["service"]) <= targets)

    def test_deploy_runs_helm_upgrade_install_per_service_with_the_commit_and_rollback(self):
        job = self.release["jobs"]["deploy"]
        self.assertEqual(job["needs"], ["digests", "chart"])
        self.assertEqual(job["env"]["KUBECONFIG_DATA"], "${{ secrets.KUBECONFIG }}")
        meta = next(s for s in self.release["jobs"]["image"]["steps"] if s.get("id") == "meta")
        self.assertEqual(job["env"]["IMAGE"], meta["env"]["IMAGE"])
        kube = next(s for s in job["steps"] if s.get("id") == "kube")
        self.assertIn('if [ -z "$KUBECONFIG_DATA" ]', kube["run"])
        for s in job["steps"][1:]:
            self.assertEqual(s.get("if"), "steps.kube.outputs.configured == 'true'", s.get("name") or s.get("uses"))
        helm = next(s for s in job["steps"] if "helm upgrade" in s.get("run", ""))
        self.assertEqual(helm["env"]["SERVICE"], "${{ matrix.service }}")
        cmd = " ".join(helm["run"].replace("\\\n", " ").split())
        # From the registry, at the version the chart job pushed for this commit.
        self.assertIn('version=$(scripts/chart-version.sh "$SERVICE" "$GITHUB_SHA")', cmd)
        self.assertRegex(cmd, r'helm upgrade --install "\$SERVICE" "oci://ghcr.io/\$\{OWNER,,\}/charts/\$SERVICE" --version "\$version" ')
        self.assertEqual(job["permissions"]["packages"], "read")
        self.assertIn('--set image.tag="$GITHUB_SHA"', cmd)
        self.assertIn('--set image.repository="${IMAGE,,}"', cmd)
        self.assertRegex(cmd, r"--(atomic|rollback-on-failure)\b")
        self.assertIn("--wait", cmd)
        # The values the command sets exist in every chart.
        for chart in SERVICES:
            v = values_of(chart)
            self.assertIn("tag", v["image"])
            self.assertIn("existingSecret", v["secrets"])

    def test_every_action_is_pinned_to_a_commit(self):
        for f in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
            for n, line in enumerate(f.read_text().splitlines(), 1):
                m = re.search(r"\buses:\s*(\S+)(.*)$", line)
                if not m or m.group(1).startswith("./"):
                    continue
                with self.subTest(file=f.name, line=n):
                    self.assertRegex(m.group(1), r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
                    self.assertRegex(m.group(2), r"#\s*v\d+\.\d+\.\d+")

    def test_ci_tests_with_real_services_and_runs_the_infra_validation(self):
        rust = self.ci["jobs"]["rust"]
        images = {name: s["image"] for name, s in rust["services"].items()}
        self.assertEqual(images, {"postgres": "postgres:16", "redis": "redis:7", "rabbitmq": "rabbitmq:3.13-management"})
        runs = " ".join(s.get("run", "") for s in rust["steps"])
        for cmd in ("cargo fmt --all -- --check", "cargo clippy --workspace --all-targets --locked -- -D warnings",
                    "cargo test --workspace --locked"):
            self.assertIn(cmd, runs)
        self.assertIn("scripts/infra-lint.sh", " ".join(s.get("run", "") for s in self.ci["jobs"]["infra"]["steps"]))
        self.assertIn("workflow_call", self.ci[True] if True in self.ci else self.ci["on"])

    def test_ci_runs_cargo_deny_with_the_committed_config(self):
        job = self.ci["jobs"]["deny"]
        checks = set(" ".join(job["strategy"]["matrix"]["checks"]).split())
        self.assertEqual(checks, {"advisories", "bans", "licenses", "sources"})
        action = next(s for s in job["steps"] if s.get("uses", "").startswith("EmbarkStudios/cargo-deny-action@"))
        self.assertEqual(action["with"]["command"], "check ${{ matrix.checks }}")
        self.assertIn("--locked", action["with"]["arguments"])
        self.assertEqual(action["with"]["rust-version"], "${{ env.RUST_TOOLCHAIN }}")
        deny = tomllib.loads((ROOT / "deny.toml").read_text())
        self.assertEqual(deny["sources"]["allow-registry"], ["https://github.com/rust-lang/crates.io-index"])
        self.assertEqual((deny["sources"]["unknown-registry"], deny["sources"]["unknown-git"]), ("deny", "deny"))
        self.assertEqual(deny["sources"]["allow-git"], [])
        self.assertEqual(deny["bans"]["multiple-versions"], "warn")
        allowed = set(deny["licenses"]["allow"]) | {a for e in deny["licenses"]["exceptions"] for a in e["allow"]}
        self.assertIn("Apache-2.0", allowed)
        for copyleft in ("GPL", "LGPL", "AGPL", "MPL", "EPL", "CDDL", "OSL", "SSPL"):
            self.assertFalse([lic for lic in allowed if lic.startswith(copyleft)], copyleft)
        for e in deny["licenses"]["exceptions"]:
            self.assertNotIn("@", e["crate"])  # every version of the crate, reviewed by license
        self.assertEqual(
            tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["license"], "Apache-2.0"
        )

    def test_test_command_runs_the_infra_validation(self):
        test_sh = (ROOT / "scripts" / "test.sh").read_text().splitlines()
        self.assertIn("scripts/infra-lint.sh", test_sh)
        self.assertGreater(test_sh.index("scripts/infra-lint.sh"), test_sh.index("cargo test --workspace --locked"))


# ------------------------------------------------------------------------------------ k8s/, compose, docs
class GeneratedTest(unittest.TestCase):
    def test_k8s_is_what_the_generator_makes_of_the_charts(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            k8s_generate.generate(out, infra_lib.charts_dir())
            for sub in ("base", "migrations"):
                want = sorted(p.name for p in (out / sub).glob("*.yaml"))
                have = sorted(p.name for p in (ROOT / "k8s" / sub).glob("*.yaml"))
                self.assertEqual(have, want, f"k8s/{sub}: run scripts/k8s_generate.py")
                _, mismatch, errors = filecmp.cmpfiles(out / sub, ROOT / "k8s" / sub, want, shallow=False)
                self.assertEqual(mismatch + errors, [], f"k8s/{sub} is out of date: run scripts/k8s_generate.py")

    def test_k8s_reads_the_existing_secret_and_migrates_with_plain_jobs(self):
        base = [
            d for f in sorted((ROOT / "k8s/base").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
            if d and d["kind"] not in ("Kustomization", "Namespace")
        ]
        self.assertEqual(by_kind(base, "Secret"), [])
        self.assertEqual(by_kind(base, "Job"), [])
        self.assertEqual(sorted(d["metadata"]["name"] for d in by_kind(base, "Deployment")), sorted(SERVICES))
        jobs = [d for f in sorted((ROOT / "k8s/migrations").glob("*-migrate.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
        self.assertEqual(sorted(j["metadata"]["name"] for j in jobs), sorted(f"{c}-migrate" for c in MIGRATING))
        for d in base + jobs:
            self.assertFalse(any(k.startswith("helm.sh/") for k in (d["metadata"].get("annotations") or {})))
            self.assertNotIn("helm.sh/chart", d["metadata"].get("labels") or {})
        example = yaml.safe_load((ROOT / "k8s/secret.example.yaml").read_text())
        keys = {DB_SECRET_KEY[c] if k == "DATABASE_URL" else k for c, ks in SECRET_KEYS.items() for k in ks}
        self.assertEqual(set(example["stringData"]), keys)
        # Every service reads its DATABASE_URL from its own key: its own role.
        for d in [d for d in base if d["kind"] == "Deployment"] + jobs:
            chart = d["metadata"]["labels"]["app.kubernetes.io/name"]
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container(d).get("env", []) if "valueFrom" in e}
            if chart in DB_SECRET_KEY:
                self.assertEqual(refs["DATABASE_URL"], DB_SECRET_KEY[chart], d["metadata"]["name"])
        # Placeholders only, which production refuses; one role per service, never the superuser.
        db_users = set()
        for key, value in example["stringData"].items():
            if value:
                self.assertIn("CHANGE-ME", value, key)
            if key.endswith("DATABASE_URL"):
                self.assertNotRegex(value, r"^postgres(ql)?://postgres[:@]")
                db_users.add(value.split("://", 1)[1].split(":", 1)[0])
        self.assertEqual(len(db_users), len(DB_SECRET_KEY))

    def test_operations_doc_shows_the_database_roles_sql_the_tests_run(self):
        sql = (ROOT / "libs/db/sql/database-roles.sql").read_text()
        body = sql.split("what is documented here is what is tested.\n", 1)[1].strip("\n")
        doc = (ROOT / "docs/operations.md").read_text()
        self.assertIn("## Security", doc)
        self.assertIn("### Database roles", doc)
        self.assertIn(f"```sql\n{body}\n```", doc, "docs/operations.md: copy libs/db/sql/database-roles.sql")
        for statement in ("CREATE ROLE", "LOGIN PASSWORD", "CREATE SCHEMA flights AUTHORIZATION",
                          "CREATE SCHEMA bookings AUTHORIZATION", "CREATE SCHEMA identity AUTHORIZATION",
                          "REVOKE CREATE ON SCHEMA public FROM PUBLIC", "REVOKE ALL ON DATABASE"):
            self.assertIn(statement, body)
        testkit = (ROOT / "libs/testkit/src/database.rs").read_text()
        self.assertIn('include_str!("../../db/sql/database-roles.sql")', testkit, "the tests run the same file")

    def test_chart_readmes_and_schemas_are_generated_from_values(self):
        self.assertEqual(helm_docs.main(["--check"]), 0, "run scripts/helm_docs.py")

    def test_compose_builds_the_five_services_with_their_migrations(self):
        compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
        svcs = compose["services"]
        self.assertEqual(svcs["postgres"]["image"], "postgres:16")
        self.assertEqual(svcs["redis"]["image"], "redis:7")
        self.assertEqual(svcs["rabbitmq"]["image"], "rabbitmq:3.13-management")
        for name in ("postgres", "redis", "rabbitmq"):
            self.assertIn("healthcheck", svcs[name])
        for name in SERVICES:
            with self.subTest(service=name):
                s = svcs[name]
                self.assertEqual(s["build"]["dockerfile"], "Dockerfiles/Dockerfile")
                self.assertEqual(s["build"]["target"], name)
                self.assertEqual(s["user"], "65532:65532")
                self.assertIs(s["read_only"], True)
                env = s["environment"]
                for callee in CALLS[name]:
                    self.assertEqual(env[UPSTREAM_ENV[callee]], f"http://{callee}:{readme_ports()[callee][0]}")
                if name in MIGRATING:
                    m = svcs[f"{name}-migrate"]
                    self.assertEqual((m["build"]["target"], m["command"]), (name, ["migrate"]))
                    self.assertEqual(s["depends_on"][f"{name}-migrate"]["condition"], "service_completed_successfully")
                    self.assertEqual(env["MIGRATE_ON_START"], "false")
        gw = svcs["gateway"]["environment"]
        self.assertEqual((gw["ENVIRONMENT"], gw["ACCESS_POLICY"]), ("development", "compatible"))
        self.assertEqual(svcs["bookings"]["environment"]["ACCESS_POLICY"], "compatible", "the gateway's policy")
        self.assertGreaterEqual(len(gw["JWT_SECRET"]), 32)
        self.assertIn("127.0.0.1:8080:8080", svcs["gateway"]["ports"])
        self.assertIn("127.0.0.1:8081:8081", svcs["gateway"]["ports"])

    def test_readme_documents_docker_and_deployment(self):
        readme = (ROOT / "README.md").read_text()
        for text in ("### With Docker", "docker compose up", "## Deployment", "helm/", "k8s/", "Dockerfiles/",
                     ".github/workflows/"):
            self.assertTrue(text in readme, f"README.md does not mention {text!r}")


# -------------------------------------------------------------------------------------- scripts
class ScriptsTest(unittest.TestCase):
    # A path into cargo's target directory written out (`target/debug/…`, `./target/release/…`)
    # breaks under CARGO_TARGET_DIR; `$target/debug`, `{TARGET}` and the like come from `cargo
    # metadata` and are fine.
    HARD_CODED = re.compile(r"(?<![\w$}{/.-])(\./)?target/(debug|release|profiling)\b")

    def test_scripts_find_cargo_binaries_through_cargo_not_a_fixed_path(self):
        paths = [ROOT / ".ci" / "run", *sorted((ROOT / "scripts").glob("*.sh")),
                 *sorted((ROOT / "scripts").glob("*.py")), *sorted((ROOT / "bench").glob("*.py"))]
        found = []
        for path in paths:
            if path.name == "infra_test.py":  # its own examples, below
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0] if path.suffix in (".sh", ".py", "") else line
                if self.HARD_CODED.search(code):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
        self.assertEqual(found, [], "use the target directory `cargo metadata` reports (CARGO_TARGET_DIR)")

    def test_the_pattern_tells_a_fixed_path_from_a_found_one(self):
        for fixed in ('"target/debug/flightmesh" up', "./target/release/loadgen run", "cd target/debug"):
            self.assertTrue(self.HARD_CODED.search(fixed), fixed)
        for found in ('"$target/debug/flightmesh" up', 'os.path.join(TARGET, "release")', "${target}/release/x",
                      "$REPO/target/infra-venv"):
            self.assertFalse(self.HARD_CODED.search(found), found)


if __name__ == "__main__":
    unittest.main(verbosity=1)
