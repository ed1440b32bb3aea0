"""A fresh one-process mesh (`flightmesh up`) for the test command's end-to-end checks
(scripts/prometheus_check.py, scripts/docs_browser_check.py): its own database, RabbitMQ vhost and
Redis prefix, ports below the kernel's ephemeral range, everything removed afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, object]:
    """(status, JSON body or text) of one request; never raises on an HTTP error status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw.decode(errors="replace")


def wait_for(what: str, check, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} not ready after {limit:.0f} s")


def target_dir() -> Path:
    """Cargo's target directory, wherever CARGO_TARGET_DIR or .cargo/config put it."""
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def apt_install(binary: str, package: str) -> str:
    """The path of `binary`, installing the Debian package `package` first when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"{binary} is missing: apt-get install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    return shutil.which(binary) or f"/usr/bin/{binary}"


@dataclass
class Mesh:
    run: str
    base_port: int
    work: Path

    @property
    def gateway(self) -> str:
        return f"127.0.0.1:{self.base_port}"

    @property
    def admin(self) -> dict[str, str]:
        return {
            "gateway": f"127.0.0.1:{self.base_port + 15}",
            "flights": f"127.0.0.1:{self.base_port + 11}",
            "bookings": f"127.0.0.1:{self.base_port + 12}",
            "stats-worker": f"127.0.0.1:{self.base_port + 13}",
            "ai-agent": f"127.0.0.1:{self.base_port + 14}",
        }

    def url(self, path: str) -> str:
        return f"http://{self.gateway}{path}"


@contextlib.contextmanager
def fresh_mesh(name: str, port_base: int, extra_env: dict[str, str] | None = None) -> Iterator[Mesh]:
    """`flightmesh up` on a fresh database, vhost and Redis prefix, ready when this yields; stopped
    and cleaned up afterwards (its log kept and printed if the block fails)."""
    run = f"fm_{name}_{os.getpid()}"
    # Below the kernel's ephemeral range (32768+), where outgoing connections could hold a port.
    mesh = Mesh(run=run, base_port=port_base + os.getpid() % 4000, work=Path(tempfile.mkdtemp(prefix=run)))
    subprocess.run(["cargo", "build", "-q", "--locked", "-p", "flightmesh", "--bin", "flightmesh"], cwd=ROOT,
                   check=True)
    binary = target_dir() / "debug/flightmesh"
    psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"]
    broker_cli = shutil.which("rabbitmqctl")
    proc = None
    failed = True
    try:
        subprocess.run([*psql, f"CREATE DATABASE {run}"], check=True, capture_output=True)
        amqp = "amqp://guest:guest@127.0.0.1:5672/%2f"
        if broker_cli:
            subprocess.run([broker_cli, "-q", "add_vhost", run], check=True, capture_output=True)
            subprocess.run([broker_cli, "-q", "set_permissions", "-p", run, "guest", ".*", ".*", ".*"],
                           check=True, capture_output=True)
            amqp = f"amqp://guest:guest@127.0.0.1:5672/{run}"
        port = mesh.base_port
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{run}",
            "AMQP_URL": amqp,
            "BOOKINGS_EXCHANGE": f"{run}.bookings", "CATALOG_EXCHANGE": f"{run}.catalog",
            "STATS_QUEUE": f"{run}.stats", "REDIS_KEY_PREFIX": f"{run}:",
            "GATEWAY_HTTP_ADDR": mesh.gateway, "GATEWAY_ADMIN_ADDR": mesh.admin["gateway"],
            "FLIGHTS_GRPC_ADDR": f"127.0.0.1:{port + 1}", "FLIGHTS_ADMIN_ADDR": mesh.admin["flights"],
            "BOOKINGS_GRPC_ADDR": f"127.0.0.1:{port + 2}", "BOOKINGS_ADMIN_ADDR": mesh.admin["bookings"],
            "STATS_GRPC_ADDR": f"127.0.0.1:{port + 3}", "STATS_ADMIN_ADDR": mesh.admin["stats-worker"],
            "AI_GRPC_ADDR": f"127.0.0.1:{port + 4}", "AI_ADMIN_ADDR": mesh.admin["ai-agent"],
            "LOG_FORMAT": "json", "RUST_LOG": "warn",
            **(extra_env or {}),
        }
        log = open(mesh.work / "stack.log", "wb")
        proc = subprocess.Popen([str(binary), "up"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=mesh.work)
        wait_for("the mesh", lambda: http("GET", f"http://{mesh.admin['gateway']}/readyz")[0] == 200)
        yield mesh
        failed = False
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if failed and (mesh.work / "stack.log").exists():
            print((mesh.work / "stack.log").read_text(errors="replace")[-4000:])
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {run} WITH (FORCE)"], capture_output=True)
        if broker_cli:
            subprocess.run([broker_cli, "-q", "delete_vhost", run], capture_output=True)
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "EVAL",
                        "local c = '0' repeat local p = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000) "
                        "c = p[1] for _, k in ipairs(p[2]) do redis.call('DEL', k) end until c == '0'",
                        "0", f"{run}:*"], capture_output=True)
        shutil.rmtree(mesh.work, ignore_errors=True)
