#!/usr/bin/env python3
"""The Grafana dashboard and the SLO rules, proven on a real Prometheus.

Starts the whole mesh (`flightmesh up`) on a fresh database, RabbitMQ vhost and Redis prefix, a
small OpenAI-compatible model double (the LLM cannot be reached), and a real Prometheus (Debian
package `prometheus`, installed with apt-get when missing) scraping every admin port each second
and evaluating the charts' rule files (helm/*/rules/slo.yaml). It drives the traffic that makes
every metric move (catalog, a child's booking with a pet and its cancellation, statistics, chat
with a tool call, a 429, a 401, destination search), then asks Prometheus' HTTP API for every
query of docs/grafana/flightmesh.json (`$job` = any job, `$__rate_interval` = 1m) and every
recording rule, and fails naming each one that returns no data. Cleans up after itself.

    python3 scripts/prometheus_check.py [--keep-going]   (about 40 s)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = f"fm_prom_{os.getpid()}"
# Below the kernel's ephemeral range (32768+), where outgoing connections could hold a port.
BASE = 24000 + os.getpid() % 8000
GATEWAY = f"127.0.0.1:{BASE}"
ADMIN = {
    "gateway": f"127.0.0.1:{BASE + 15}",
    "flights": f"127.0.0.1:{BASE + 11}",
    "bookings": f"127.0.0.1:{BASE + 12}",
    "stats-worker": f"127.0.0.1:{BASE + 13}",
    "ai-agent": f"127.0.0.1:{BASE + 14}",
}
PROMETHEUS = f"127.0.0.1:{BASE + 20}"


def log(message: str) -> None:
    print(f"prometheus-check: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the model double
class ModelDouble(BaseHTTPRequestHandler):
    """OpenAI chat completions: a tool call when the conversation has no tool result yet and the
    question names a destination, text otherwise; with token usage, as providers report it."""

    destination = ""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        messages = body.get("messages", [])
        asked_tools = any(m.get("role") == "tool" for m in messages)
        if body.get("tools") and not asked_tools and "Impuestos" in json.dumps(messages):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{
                    "id": "call-1",
                    "type": "function",
                    "function": {"name": "market_data", "arguments": json.dumps({"destination": self.destination})},
                }],
            }
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": "Respuesta de prueba."}, "stop"
        answer = json.dumps({
            "id": "chatcmpl-check", "object": "chat.completion", "created": int(time.time()), "model": "check",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args) -> None:
        pass


# ------------------------------------------------------------------------------ helpers
def http(method: str, url: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def api(method: str, path: str, body: dict | None = None, want: int | None = 200) -> object:
    status, answer = http(method, f"http://{GATEWAY}{path}", body)
    if want is not None and status != want:
        raise SystemExit(f"prometheus-check: {method} {path} answered {status}, not {want}: {answer}")
    return answer


def wait_for(what: str, check, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"prometheus-check: {what} not ready after {limit:.0f} s")


def target_dir() -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def ensure_prometheus() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing the Debian package prometheus")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
        # The package starts its own server (port 9090); only the binary is wanted here.
        subprocess.run(["sh", "-c", "systemctl stop prometheus || pkill -x prometheus"], capture_output=True)
        return shutil.which("prometheus") or "/usr/bin/prometheus"
    raise SystemExit("prometheus-check: install Prometheus (apt-get install prometheus)")


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "docs/grafana/flightmesh.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace('"$job"', '".+"')
            out.append((panel["title"], expr))
    return out


def recording_rules(files: list[Path]) -> list[str]:
    names = []
    for f in files:
        for line in f.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("- record:"):
                names.append(stripped.split(":", 1)[1].strip())
    return names


def query(expr: str) -> list:
    url = f"http://{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, answer = http("GET", url)
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "success":
        return [f"error {status}: {answer}"]
    return answer["data"]["result"]


# ------------------------------------------------------------------------------ the run
def drive_traffic() -> None:
    destination = api("POST", "/api/v1/flights/destinations/", {
        "name": "Metrica", "tax_amount": 10, "is_promotion": True, "allows_pets": True,
    })
    ModelDouble.destination = destination["name"]
    flight = api("POST", "/api/v1/flights/", {
        "flight_number": "PM100", "origin": "Bogota", "base_price": 200,
        "destination_id": destination["id"], "capacity": 10,
    })
    booking = api("POST", "/api/v1/bookings/", {
        "passenger_name": "Nino", "passenger_age": 8, "flight_id": flight["id"], "has_pet": True,
    })
    api("POST", "/api/v1/bookings/", {"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight["id"]})
    api("POST", f"/api/v1/bookings/{booking['id']}/cancel", {})
    api("GET", "/api/v1/flights/")
    api("GET", "/api/v1/bookings/")
    api("GET", "/api/v1/flights/999999", want=404)  # an RPC that ends NotFound
    wait_for("the statistics", lambda: api("GET", "/api/v1/stats/general")["total_revenue"] > 0, 30)
    api("GET", "/api/v1/auth/me", want=401)
    # Destination search: an embedding stored, then a query.
    params = urllib.parse.urlencode({"destination_id": destination["id"], "description": "playas y buceo"})
    api("POST", f"/api/v1/ai/embed-destination?{params}", None)
    api("GET", "/api/v1/ai/search-destinations?" + urllib.parse.urlencode({"query": "buceo"}))
    # The model: a tool call then text, then plain answers until the AI budget answers 429.
    api("POST", "/api/v1/ai/chat", {"message": "¿Impuestos de Metrica?"})
    for _ in range(10):
        status, _ = http("POST", f"http://{GATEWAY}/api/v1/ai/chat", {"message": "Hola"})
        if status == 429:
            break
    else:
        raise SystemExit("prometheus-check: the AI rate limit never answered 429")


def main() -> int:
    keep_going = "--keep-going" in sys.argv[1:]
    prometheus_bin = ensure_prometheus()
    target = target_dir()
    subprocess.run(["cargo", "build", "-q", "--locked", "-p", "flightmesh", "--bin", "flightmesh"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix=RUN))
    procs: list[subprocess.Popen] = []
    model = ThreadingHTTPServer(("127.0.0.1", 0), ModelDouble)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    broker_cli = shutil.which("rabbitmqctl")
    psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"]
    try:
        subprocess.run([*psql, f"CREATE DATABASE {RUN}"], check=True, capture_output=True)
        amqp = "amqp://guest:guest@127.0.0.1:5672/%2f"
        if broker_cli:
            subprocess.run([broker_cli, "-q", "add_vhost", RUN], check=True, capture_output=True)
            subprocess.run([broker_cli, "-q", "set_permissions", "-p", RUN, "guest", ".*", ".*", ".*"],
                           check=True, capture_output=True)
            amqp = f"amqp://guest:guest@127.0.0.1:5672/{RUN}"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{RUN}",
            "AMQP_URL": amqp,
            "BOOKINGS_EXCHANGE": f"{RUN}.bookings", "CATALOG_EXCHANGE": f"{RUN}.catalog", "STATS_QUEUE": f"{RUN}.stats",
            "REDIS_KEY_PREFIX": f"{RUN}:",
            "GATEWAY_HTTP_ADDR": GATEWAY, "GATEWAY_ADMIN_ADDR": ADMIN["gateway"],
            "FLIGHTS_GRPC_ADDR": f"127.0.0.1:{BASE + 1}", "FLIGHTS_ADMIN_ADDR": ADMIN["flights"],
            "BOOKINGS_GRPC_ADDR": f"127.0.0.1:{BASE + 2}", "BOOKINGS_ADMIN_ADDR": ADMIN["bookings"],
            "STATS_GRPC_ADDR": f"127.0.0.1:{BASE + 3}", "STATS_ADMIN_ADDR": ADMIN["stats-worker"],
            "AI_GRPC_ADDR": f"127.0.0.1:{BASE + 4}", "AI_ADMIN_ADDR": ADMIN["ai-agent"],
            "AI_AI_BASE_URL": f"http://127.0.0.1:{model.server_address[1]}/v1", "AI_AI_MODEL": "check-model",
            "GATEWAY_RATE_LIMIT_AI": "4/60s",
            "LOG_FORMAT": "json", "RUST_LOG": "warn",
        }
        stack_log = open(work / "stack.log", "wb")
        procs.append(subprocess.Popen([str(target / "debug/flightmesh"), "up"], env=env, stdout=stack_log,
                                      stderr=subprocess.STDOUT, cwd=work))
        wait_for("the mesh", lambda: http("GET", f"http://{ADMIN['gateway']}/readyz")[0] == 200)

        rule_files = sorted(ROOT.glob("helm/*/rules/slo.yaml"))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(f) for f in rule_files],
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": [addr]}]} for name, addr in ADMIN.items()
            ],
        }
        (work / "prometheus.yml").write_text(json.dumps(config))
        prom_log = open(work / "prometheus.log", "wb")
        procs.append(subprocess.Popen([
            prometheus_bin, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address={PROMETHEUS}",
        ], stdout=prom_log, stderr=subprocess.STDOUT))
        wait_for("Prometheus", lambda: http("GET", f"http://{PROMETHEUS}/-/ready")[0] == 200)
        # A first scrape of every target before the traffic, so that rates have a starting point.
        wait_for("the first scrapes", lambda: len([r for r in query("up == 1")]) == len(ADMIN), 30)

        drive_traffic()
        queries = dashboard_queries()
        records = recording_rules(rule_files)
        missing: list[str] = []
        deadline = time.monotonic() + 30
        while True:
            time.sleep(2)
            missing = [f"panel {title!r}: {expr}" for title, expr in queries if not query(expr)]
            missing += [f"recording rule {name}" for name in records if not query(name)]
            if not missing or time.monotonic() > deadline:
                break
        rules_status, rules = http("GET", f"http://{PROMETHEUS}/api/v1/rules")
        broken = [
            f"rule {r.get('name')}: {r.get('lastError')}"
            for g in (rules or {}).get("data", {}).get("groups", []) for r in g["rules"] if r.get("health") == "err"
        ]
        for line in missing + broken:
            log(f"NO DATA {line}" if line in missing else f"BROKEN {line}")
        log(f"{len(queries) - sum(m.startswith('panel') for m in missing)}/{len(queries)} dashboard queries and "
            f"{len(records) - sum(m.startswith('recording') for m in missing)}/{len(records)} recording rules "
            f"return data; {len(broken)} rules in error (rules API {rules_status})")
        if missing or broken:
            if keep_going:
                log(f"logs in {work}")
                work = None
            return 1
        return 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        model.shutdown()
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {RUN} WITH (FORCE)"], capture_output=True)
        if broker_cli:
            subprocess.run([broker_cli, "-q", "delete_vhost", RUN], capture_output=True)
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "EVAL",
                        "local c = '0' repeat local p = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) "
                        "c = p[1] for _, k in ipairs(p[2]) do redis.call('DEL', k) end until c == '0'",
                        "0", f"{RUN}:*"], capture_output=True)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
