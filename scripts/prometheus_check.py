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

    python3 scripts/prometheus_check.py   (about 15 s with a built flightmesh)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mesh_lib import ROOT, Mesh, apt_install, fresh_mesh, http, wait_for


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
def api(mesh: Mesh, method: str, path: str, body: dict | None = None, want: int | None = 200) -> object:
    status, answer = http(method, mesh.url(path), body)
    if want is not None and status != want:
        raise SystemExit(f"prometheus-check: {method} {path} answered {status}, not {want}: {answer}")
    return answer


def start_prometheus(mesh: Mesh, rule_files: list[Path], address: str) -> subprocess.Popen:
    binary = apt_install("prometheus", "prometheus")
    # The Debian package starts its own server (port 9090); only the binary is wanted here.
    subprocess.run(["sh", "-c", "systemctl stop prometheus || pkill -x prometheus"], capture_output=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [addr]}]} for name, addr in mesh.admin.items()
        ],
    }
    (mesh.work / "prometheus.yml").write_text(json.dumps(config))
    return subprocess.Popen([
        binary, f"--config.file={mesh.work / 'prometheus.yml'}", f"--storage.tsdb.path={mesh.work / 'tsdb'}",
        f"--web.listen-address={address}",
    ], stdout=open(mesh.work / "prometheus.log", "wb"), stderr=subprocess.STDOUT)


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


def query(prometheus: str, expr: str) -> list:
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, answer = http("GET", url)
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "success":
        return [f"error {status}: {answer}"]
    return answer["data"]["result"]


# ------------------------------------------------------------------------------ the run
def drive_traffic(mesh: Mesh) -> None:
    destination = api(mesh, "POST", "/api/v1/flights/destinations/", {
        "name": "Metrica", "tax_amount": 10, "is_promotion": True, "allows_pets": True,
    })
    ModelDouble.destination = destination["name"]
    flight = api(mesh, "POST", "/api/v1/flights/", {
        "flight_number": "PM100", "origin": "Bogota", "base_price": 200,
        "destination_id": destination["id"], "capacity": 10,
    })
    booking = api(mesh, "POST", "/api/v1/bookings/", {
        "passenger_name": "Nino", "passenger_age": 8, "flight_id": flight["id"], "has_pet": True,
    })
    api(mesh, "POST", "/api/v1/bookings/", {"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight["id"]})
    api(mesh, "POST", f"/api/v1/bookings/{booking['id']}/cancel", {})
    api(mesh, "GET", "/api/v1/flights/")
    api(mesh, "GET", "/api/v1/bookings/")
    api(mesh, "GET", "/api/v1/flights/999999", want=404)  # an RPC that ends NotFound
    wait_for("the statistics", lambda: api(mesh, "GET", "/api/v1/stats/general")["total_revenue"] > 0, 30)
    api(mesh, "GET", "/api/v1/auth/me", want=401)
    # Destination search: an embedding stored, then a query.
    params = urllib.parse.urlencode({"destination_id": destination["id"], "description": "playas y buceo"})
    api(mesh, "POST", f"/api/v1/ai/embed-destination?{params}", None)
    api(mesh, "GET", "/api/v1/ai/search-destinations?" + urllib.parse.urlencode({"query": "buceo"}))
    # The model: a tool call then text, then plain answers until the AI budget answers 429.
    api(mesh, "POST", "/api/v1/ai/chat", {"message": "¿Impuestos de Metrica?"})
    for _ in range(10):
        if http("POST", mesh.url("/api/v1/ai/chat"), {"message": "Hola"})[0] == 429:
            break
    else:
        raise SystemExit("prometheus-check: the AI rate limit never answered 429")


def main() -> int:
    model = ThreadingHTTPServer(("127.0.0.1", 0), ModelDouble)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    extra = {
        "AI_AI_BASE_URL": f"http://127.0.0.1:{model.server_address[1]}/v1", "AI_AI_MODEL": "check-model",
        "GATEWAY_RATE_LIMIT_AI": "4/60s",
    }
    rule_files = sorted(ROOT.glob("helm/*/rules/slo.yaml"))
    try:
        with fresh_mesh("prom", 24000, extra) as mesh:
            address = f"127.0.0.1:{mesh.base_port + 20}"
            prometheus = start_prometheus(mesh, rule_files, address)
            try:
                wait_for("Prometheus", lambda: http("GET", f"http://{address}/-/ready")[0] == 200)
                # A first scrape of every target before the traffic, so that rates have a start.
                wait_for("the first scrapes", lambda: len(query(address, "up == 1")) == len(mesh.admin), 30)
                drive_traffic(mesh)
                return check(address, rule_files)
            finally:
                prometheus.send_signal(signal.SIGTERM)
                prometheus.wait(timeout=20)
    finally:
        model.shutdown()


def check(address: str, rule_files: list[Path]) -> int:
    queries = dashboard_queries()
    records = recording_rules(rule_files)
    deadline = time.monotonic() + 30
    while True:
        time.sleep(2)
        missing = [f"panel {title!r}: {expr}" for title, expr in queries if not query(address, expr)]
        missing += [f"recording rule {name}" for name in records if not query(address, name)]
        if not missing or time.monotonic() > deadline:
            break
    rules_status, rules = http("GET", f"http://{address}/api/v1/rules")
    broken = [
        f"rule {r.get('name')}: {r.get('lastError')}"
        for g in (rules or {}).get("data", {}).get("groups", []) for r in g["rules"] if r.get("health") == "err"
    ]
    for line in missing:
        log(f"NO DATA {line}")
    for line in broken:
        log(f"BROKEN {line}")
    log(f"{len(queries) - sum(m.startswith('panel') for m in missing)}/{len(queries)} dashboard queries and "
        f"{len(records) - sum(m.startswith('recording') for m in missing)}/{len(records)} recording rules "
        f"return data; {len(broken)} rules in error (rules API {rules_status})")
    return 1 if missing or broken else 0


if __name__ == "__main__":
    sys.exit(main())
