#!/usr/bin/env python3
"""Benchmarks of flightmesh on this machine, reproducible with one command:

    python3 bench/run.py [broker] [rounds] [bookings] [cpu] [pinned] [stats] [pipeline] [processes]

(no section: all of them; some: those, the others keep their figures in latest.json)

- rounds:    pgbench, gRPC to bookings and REST through the gateway, alternating, three rounds
             (BENCH_ROUNDS), 16 clients, 100 flights, booking path, each service its own
             process: the ratios to pgbench as the median of the rounds, the CPU time per
             booking of PostgreSQL, each service and the client, and how busy each run kept
             the machine (the cores' idle share, PostgreSQL's WAL flushes per booking).
- bookings:  booking creation through the gateway (REST) and straight to the bookings service
             (gRPC) at 1, 16 and 64 concurrent clients, over 100 flights and on one hot flight;
             once with the booking path alone (outbox relays off: the database work is exactly
             pgbench's) and once with the whole pipeline running (relay, RabbitMQ, stats worker,
             Redis) — beside pgbench running the same statement (`--pgbench-script` prints it).
- stats:     events/s the stats worker applies with prefetch 1 and 50 (a pre-filled queue
             drained), and the event lag (occurred → applied) at a steady booking rate, each
             service its own process: 500/s once, 2,000/s three times (BENCH_LAG_RUNS), with
             the CPU time per event of every process on the way and `loadgen verify` after each.
- pipeline:  the relay's and the stats worker's CPU per event: bookings at a steady 2,000/s over
             gRPC, each service its own process, alternating runs with the event pipeline off
             (outbox relays off) and on, three of each (BENCH_PIPELINE_RUNS); the relay's share is
             bookings' CPU per booking with its relay on less with it off, the worker's is its
             own, next to RabbitMQ's; `loadgen verify` after each run with the pipeline on.
- processes: each service as its own process (the deployment shape): stripped release binary
             sizes, cold start (exec → /readyz answers 200), idle and under-load (the flow
             scenario over REST, 16 clients) RSS and CPU, the gateway's overhead (the same
             bookings over REST and over gRPC), and `loadgen verify` (Redis == PostgreSQL) at
             the end.
- cpu:       CPU time per booking of PostgreSQL, the services and the client, for pgbench and
             for the service path over gRPC and REST (16 clients, 100 flights).
- pinned:    the deployment shape on one machine: PostgreSQL alone on CPU 0, pgbench or the
             services and the client on CPU 1 (16 clients, 100 flights, booking path).
- broker:    RabbitMQ alone: persistent publishes with confirms, one at a time and pipelined,
             and consumption with acks (`loadgen broker`), and RabbitMQ's CPU per message; then
             the pipeline's pattern alone (`--pipelined-only`, acks in batches as the worker's)
             and RabbitMQ's CPU per message in it.
- overload:  2,000 concurrent keep-alive connections reading GET /api/v1/flights/ for 20 s
             (126 flights, rate limit lifted, `flightmesh up`), without load shedding and the
             catalog cache ("before") and with the defaults ("after"); the admin /readyz of the
             gateway and of flights polled every 100 ms throughout. Not in the default set (it
             saturates the machine): `python3 bench/run.py overload`.

BENCH_PROFILE=profiling builds and runs the `profiling` profile instead of release (the same code
with line tables: before/after comparisons without a second release build). BENCH_BIN=<dir> runs
the binaries in that directory and builds nothing: an A/B of two builds kept side by side.

Services started alone run one runtime thread each, as the charts set them (TOKIO_WORKER_THREADS=1);
BENCH_SERVICE_WORKERS=N sets another count, 0 Tokio's default (one per CPU). The load generator runs
one runtime thread too (LOADGEN_ENV below).

Needs PostgreSQL, Redis and RabbitMQ on their standard local ports (scripts/services-up.sh) and
builds the release binaries itself. Writes bench/results/latest.json and bench/results/latest.md
(the tables of docs/benchmarks.md); `python3 bench/run.py --render` re-renders the latter.
`python3 bench/run.py --pgbench-script` prints the baseline's pgbench script and runs nothing.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Cargo's target directory, wherever CARGO_TARGET_DIR or .cargo/config put it.
TARGET = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                                   check=True, capture_output=True, text=True).stdout)["target_directory"]
# The binaries' profile: release, or `profiling` (its code with line tables) for bench/profile.py.
PROFILE = os.environ.get("BENCH_PROFILE", "release")
BIN = os.environ.get("BENCH_BIN") or os.path.join(TARGET, PROFILE)
PG = "postgres://postgres@127.0.0.1:5432"
DB = "fm_bench"
PGBENCH_DB = "fm_pgbench"
NAMES = {
    "BOOKINGS_EXCHANGE": "bench.bookings",
    "CATALOG_EXCHANGE": "bench.catalog",
    "STATS_QUEUE": "bench.stats",
    "REDIS_KEY_PREFIX": "bench:",
}
DURATION = os.environ.get("BENCH_DURATION", "10s")
WARMUP = os.environ.get("BENCH_WARMUP", "2s")


def sh(*args, env=None, check=True, capture=True):
    result = subprocess.run(args, cwd=ROOT, env=env, check=False, text=True,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr or ''}")
    return result.stdout if capture else ""


def psql(sql, db="postgres"):
    return sh("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAtc", sql)


def fresh_db(name):
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")


def clean_up():
    """Leave the machine as found: the runs' databases, keys and queued events go."""
    for db in (DB, PGBENCH_DB):
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    clear_redis()
    purge_stats_queue()


def purge_stats_queue():
    """Events left by an interrupted run would be counted in this one."""
    sh("rabbitmqctl", "-q", "purge_queue", NAMES["STATS_QUEUE"], check=False)


def clear_redis():
    """Deletes the bench's keys inside Redis (destination names put spaces in keys)."""
    sh("redis-cli", "EVAL", "local cursor = '0' repeat "
       "local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000) cursor = page[1] "
       "for _, key in ipairs(page[2]) do redis.call('DEL', key) end until cursor == '0'",
       "0", NAMES["REDIS_KEY_PREFIX"] + "*")


def base_env(extra):
    env = dict(os.environ)
    env.update({"DATABASE_URL": f"{PG}/{DB}", "RUST_LOG": "warn", "LOG_FORMAT": "json", "DRAIN_DELAY": "0s",
                # Every simulated client comes from 127.0.0.1: one rate-limit budget. Lift it (the
                # limiter still runs, so its cost is in the figures).
                "RATE_LIMIT_DEFAULT": "1000000000/60s"})
    env.update(NAMES)
    env.update(extra)
    return env


class Mesh:
    """`flightmesh up` in the background, on a fresh database."""

    def __init__(self, cpus=None, **extra):
        fresh_db(DB)
        clear_redis()
        purge_stats_queue()
        self.log = open(os.path.join(ROOT, "bench", "results", "mesh.log"), "w")
        self.proc = subprocess.Popen([*pinned_to(cpus), os.path.join(BIN, "flightmesh"), "up"], cwd=ROOT,
                                     env=base_env(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_http("http://127.0.0.1:8080/readyz")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.log.close()


def wait_http(url, timeout=60, poll=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            pass
        time.sleep(poll)
    raise SystemExit(f"{url} never became ready")


def pinned_to(cpus):
    """A command prefix that runs a program on the given CPUs (all of them when None)."""
    return ["taskset", "-c", cpus] if cpus else []


# The load generator runs one runtime thread, as the services do: its CPU per call comes out of the
# two cores it shares with what it measures, and two threads on them keep waking each other (per
# gRPC booking 42–47 µs with Tokio's two, 33–35 µs with one; pgbench's client 22 µs).
LOADGEN_ENV = {**os.environ, "TOKIO_WORKER_THREADS": "1"}


def loadgen(*args, cpus=None):
    out = sh(*pinned_to(cpus), os.path.join(BIN, "loadgen"), "run", "--json", "--duration", DURATION,
             "--warmup", WARMUP, *args, env=LOADGEN_ENV)
    return json.loads(out.strip().splitlines()[-1])


# pgbench runs the bookings service's own booking statement (BOOK_SQL in
# services/bookings/src/store/book.rs), read from that source with a value in each of its
# parameters, so that the baseline cannot drift from what the service runs. The values: a random
# flight of `:flights` (1 = one hot flight), a random age, an id from the service's id sequence, a
# fixed priced booking and event, and no Idempotency-Key (the load generator sends none either).
PGBENCH_VALUES = {
    1: ":flight", 2: "2000000000", 3: "nextval('bookings.booking_id_blocks')", 4: "'Pasajero pgbench'",
    5: ":age", 6: "false", 7: "'PGB-' || :flight", 8: "1", 9: "'Cartagena'", 10: "1000.00",
    11: "100.00", 12: "50.00", 13: "950.00", 14: "NULL", 15: "now()", 16: "gen_random_uuid()",
    17: "'booking.created'", 18: "'flightmesh.bookings'", 19: "'booking.created'",
    20: "'\\x0a2430313933643262612d653430382d373030302d383030302d303030303030303030303031120f626f6f6b696e672e63726561746564'",
    21: """'{"event_type": "booking.created", "passenger_name": "Pasajero pgbench", "total_price": "950.00"}'""",
    22: "NULL", 23: "NULL", 24: "NULL", 25: "NULL",
}
PGBENCH_SCRIPT = os.path.join(TARGET, "bench-booking-transaction.sql")


def pgbench_script():
    """The pgbench script: BOOK_SQL with PGBENCH_VALUES in its parameters."""
    with open(os.path.join(ROOT, "services", "bookings", "src", "store", "book.rs")) as f:
        statement = re.search(r'const BOOK_SQL: &str = "\\\n(.*?)";', f.read(), re.S).group(1)
    statement = re.sub(r"\$(\d+)", lambda m: PGBENCH_VALUES[int(m.group(1))], statement)
    return f"\\set flight random(1, :flights)\n\\set age random(0, 90)\n{statement};\n"


def pgbench(clients, flights, cpus=None):
    with open(PGBENCH_SCRIPT, "w") as f:
        f.write(pgbench_script())
    out = sh(*pinned_to(cpus), "pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared", "-c", str(clients),
             "-j", "2", "-T", DURATION.rstrip("s"), "-D", f"flights={flights}",
             "-f", PGBENCH_SCRIPT, PGBENCH_DB)
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))
    return {"throughput": tps, "latency_avg_ms": latency}


def verify(wait):
    """`loadgen verify` on the bench database: whether Redis holds the sums of the bookings in
    PostgreSQL (waiting up to `wait` for the pipeline), and its report."""
    verified = subprocess.run([os.path.join(BIN, "loadgen"), "verify", "--database-url", f"{PG}/{DB}",
                               "--redis-prefix", NAMES["REDIS_KEY_PREFIX"], "--wait", wait],
                              cwd=ROOT, text=True, capture_output=True)
    print(verified.stderr, flush=True)
    return {"agrees": verified.returncode == 0, "report": verified.stderr}


def bench_bookings(results):
    fresh_db(PGBENCH_DB)
    sh(os.path.join(BIN, "bookings"), "migrate", env=base_env({"DATABASE_URL": f"{PG}/{PGBENCH_DB}"}))
    rows = {}
    for clients in (1, 16, 64):
        for shape, flights in (("100 flights", 100), ("1 hot flight", 1)):
            rows[(clients, shape, "pgbench")] = pgbench(clients, flights)
            print("pgbench", clients, shape, rows[(clients, shape, "pgbench")], flush=True)
    for mode, extra in (("booking path", RELAYS_OFF_MESH),
                        ("full pipeline", {})):
        mesh = Mesh(**extra)
        try:
            for clients in (1, 16, 64):
                for shape in ("100 flights", "1 hot flight"):
                    flags = ["--hot"] if shape == "1 hot flight" else ["--flights", "100"]
                    for via in ("grpc", "rest"):
                        r = loadgen("--scenario", "bookings", "--via", via, "--concurrency", str(clients), *flags)
                        rows[(clients, shape, f"{mode} {via}")] = r
                        print(mode, via, clients, shape, round(r["throughput"]), flush=True)
            if mode == "full pipeline":
                # Every booking of every run above, in the statistics once.
                results["bookings_verify"] = verify("300s")
        finally:
            mesh.stop()
    results["bookings"] = {" | ".join(map(str, k)): v for k, v in rows.items()}
    lines = ["| clients | flights | pgbench tx/s | path gRPC /s (ratio) · p50/p99 ms | path REST /s (ratio) · p50/p99 ms "
             "| full gRPC /s (ratio) · p50/p99 ms | full REST /s (ratio) · p50/p99 ms |", "|---|---|---|---|---|---|---|"]
    for clients in (1, 16, 64):
        for shape in ("100 flights", "1 hot flight"):
            base = rows[(clients, shape, "pgbench")]["throughput"]
            cells = []
            for mode in ("booking path grpc", "booking path rest", "full pipeline grpc", "full pipeline rest"):
                r = rows[(clients, shape, mode)]
                cells.append(f"{r['throughput']:.0f} ({r['throughput'] / base:.0%}) · {r['p50_ms']:.1f}/{r['p99_ms']:.1f}")
            lines.append(f"| {clients} | {shape} | {base:.0f} | " + " | ".join(cells) + " |")
    results["bookings_table"] = "\n".join(lines)


def metric(url, name):
    """Sum of a Prometheus counter/gauge over its label sets."""
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def quantiles(url, name, qs):
    """Quantiles of a Prometheus histogram, interpolated within buckets."""
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    buckets = {}
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket{{.*le="([^"]+)".*}} ([0-9.e+]+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0) + float(m.group(2))
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    out = []
    for q in qs:
        target, prev_le, prev_n = q * total, 0.0, 0.0
        for le in edges:
            n = buckets[le]
            if n >= target:
                if le == float("inf"):
                    out.append(prev_le)
                else:
                    out.append(prev_le + (le - prev_le) * ((target - prev_n) / max(n - prev_n, 1e-9)))
                break
            prev_le, prev_n = le, n
    return out


def cpu_now(mesh):
    """CPU seconds so far of each of the mesh's services, PostgreSQL, RabbitMQ, Redis and the
    client (this script's reaped children)."""
    return {**mesh.cpu(), "postgres": postgres_cpu_seconds(), "rabbitmq": rabbitmq_cpu_seconds(),
            "redis": redis_cpu_seconds(), "client": children_cpu_seconds()}


def steady_bookings(mesh, rate):
    """Bookings at a steady `rate` over gRPC to `mesh` (100 flights): loadgen's figures and the CPU
    time per booking, in µs, of every process on the way. The measurement runs 2 s past the load,
    so that the last events through the relay and the worker are in it."""
    before = cpu_now(mesh)
    run = loadgen("--scenario", "bookings", "--via", "grpc", *SEPARATE, "--rate", str(rate), "--flights", "100")
    time.sleep(2)
    after, done = cpu_now(mesh), bookings_done(run)
    return run, {name: (after[name] - before[name]) / done * 1e6 for name in after}


def bench_stats(results):
    stats = {}
    worker_env = {"GRPC_ADDR": "127.0.0.1:20063", "ADMIN_ADDR": "127.0.0.1:21063"}  # see PORTS
    for prefetch in (1, 50):
        # The mesh without its consumer; a separate worker declares the queue, then drains it.
        mesh = Mesh(STATS_CONSUMER="false")
        try:
            worker = subprocess.Popen([os.path.join(BIN, "stats-worker")], cwd=ROOT,
                                      env=base_env({**worker_env, "PREFETCH": str(prefetch)}))
            wait_http("http://127.0.0.1:21063/readyz")
            time.sleep(1)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            loadgen("--scenario", "bookings", "--via", "grpc", "--concurrency", "32", "--flights", "100")
            time.sleep(2)  # let the relay publish everything
            queued = int(sh("rabbitmqctl", "-q", "list_queues", "name", "messages").split(NAMES["STATS_QUEUE"] + "\t")[1].split()[0])
            started = time.time()
            worker = subprocess.Popen([os.path.join(BIN, "stats-worker")], cwd=ROOT,
                                      env=base_env({**worker_env, "PREFETCH": str(prefetch)}))
            metrics_url = "http://127.0.0.1:21063/metrics"
            applied = 0
            while applied < queued and time.time() - started < 300:
                time.sleep(0.1)
                try:
                    applied = metric(metrics_url, "stats_events_total")
                except Exception:
                    pass
            elapsed = time.time() - started
            stats[f"prefetch {prefetch}"] = {"events": queued, "seconds": elapsed, "events_per_s": queued / elapsed}
            print("stats prefetch", prefetch, stats[f"prefetch {prefetch}"], flush=True)
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        finally:
            mesh.stop()
    # Lag of the whole pipeline (commit → relay → RabbitMQ → worker → Redis) at a steady rate, each
    # service its own process: once at 500/s, LAG_RUNS times at 2,000/s (the spread is a finding),
    # with the CPU time per event of every process on the way and `loadgen verify` after each run.
    for rate, runs in ((500, 1), (2000, LAG_RUNS)):
        for number in range(1, runs + 1):
            mesh = Processes("lag.log")
            try:
                run, cpu_us = steady_bookings(mesh, rate)
                p50, p99 = quantiles(f"http://127.0.0.1:{PORTS['stats-worker'] + 1000}/metrics",
                                     "stats_event_lag_seconds", (0.5, 0.99))
                verified = verify("120s")
                key = f"lag at {rate}/s" if runs == 1 else f"lag at {rate}/s, run {number}"
                stats[key] = {"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "throughput": run["throughput"],
                              "cpu_us": cpu_us, "verify_agrees": verified["agrees"]}
                print("lag", rate, number, stats[key], flush=True)
            finally:
                mesh.stop()
    results["stats"] = stats


def cpu_seconds(pid, reaped_children=False):
    """User + system CPU time of a process so far; with `reaped_children`, plus that of the children
    it has waited for (the kernel adds theirs to the parent's)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if reaped_children else 13]) / os.sysconf("SC_CLK_TCK")


def bookings_done(run):
    """Bookings a loadgen run made, the warm-up's included (its summary leaves them out)."""
    return run["throughput"] * (run["elapsed_s"] + float(WARMUP.rstrip("s")))


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(rf"{field}:\s+(\d+) kB", status.read()).group(1)) / 1024


def huge_pages_mb(pid):
    """The part of the RSS in transparent huge pages."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return int(re.search(r"AnonHugePages:\s+(\d+) kB", rollup.read()).group(1)) / 1024


# Below Linux's ephemeral range (32768–60999 by default): a port in it can be taken by any
# client's outgoing connection at the moment a service starts (a full run once failed so).
PORTS = {"flights": 20071, "bookings": 20072, "stats-worker": 20073, "ai-agent": 20074}
URLS = {"FLIGHTS_URL": "http://127.0.0.1:20071", "BOOKINGS_URL": "http://127.0.0.1:20072",
        "STATS_URL": "http://127.0.0.1:20073", "AI_URL": "http://127.0.0.1:20074"}
GATEWAY = "http://127.0.0.1:8090"
# loadgen's flags for the separate processes above.
SEPARATE = ["--gateway", GATEWAY, "--bookings", URLS["BOOKINGS_URL"], "--flights-url", URLS["FLIGHTS_URL"]]


# The booking path alone: the outbox relays off. `flightmesh up` reads each service's variables
# under its prefix (BOOKINGS_, FLIGHTS_); a service started alone reads them as they are, so the
# prefixed names would be ignored there and the relays would run.
RELAYS_OFF_MESH = {"BOOKINGS_OUTBOX_RELAY": "false", "FLIGHTS_OUTBOX_RELAY": "false"}
RELAYS_OFF = {"OUTBOX_RELAY": "false"}


# The services' runtime threads, as the charts set them (TOKIO_WORKER_THREADS=1);
# BENCH_SERVICE_WORKERS=0 leaves Tokio's default (one per CPU) for a comparison.
_WORKERS = os.environ.get("BENCH_SERVICE_WORKERS", "1")
SERVICE_WORKERS = {"TOKIO_WORKER_THREADS": _WORKERS} if _WORKERS not in ("", "0") else {}


class Processes:
    """Each service its own process (the deployment shape), on a fresh database; the old clients'
    policy, as the gateway's (bookings enforces ownership itself). `cold_start_ms`: from exec
    until the service says it is ready (its database, broker or upstream connections made)."""

    def __init__(self, log_name, **extra):
        fresh_db(DB)
        clear_redis()
        purge_stats_queue()
        self.procs = {}
        self.cold_start_ms = {}
        self.log = open(os.path.join(ROOT, "bench", "results", log_name), "w")
        try:
            for name, port in PORTS.items():
                self._start(name, f"http://127.0.0.1:{port + 1000}/readyz",
                            {"GRPC_ADDR": f"127.0.0.1:{port}", "ADMIN_ADDR": f"127.0.0.1:{port + 1000}", **extra})
            self._start("gateway", f"{GATEWAY}/readyz", {"HTTP_ADDR": "127.0.0.1:8090", "ADMIN_ADDR": "127.0.0.1:8091",
                                                         **extra})
        except BaseException:
            self.stop()
            raise

    def _start(self, name, ready_url, extra):
        env = base_env({"ENVIRONMENT": "development", "ACCESS_POLICY": "compatible", **URLS, **SERVICE_WORKERS,
                        **extra})
        started = time.time()
        self.procs[name] = subprocess.Popen([os.path.join(BIN, name)], cwd=ROOT, env=env, stdout=self.log,
                                            stderr=self.log)
        # Polled every 5 ms: the cold start is measured by it.
        wait_http(ready_url, poll=0.005)
        self.cold_start_ms[name] = (time.time() - started) * 1000

    def cpu(self):
        """Each service's CPU seconds so far."""
        return {name: cpu_seconds(p.pid) for name, p in self.procs.items()}

    def stop(self):
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            proc.wait(timeout=60)
        self.log.close()


def bench_processes(results):
    """The deployment shape: each service its own process. Binary sizes, cold start, idle and
    under-load RSS and CPU, the gateway's overhead, and a Redis == PostgreSQL check at the end."""
    out = {}
    for name in ("flights", "bookings", "stats-worker", "ai-agent", "gateway"):
        out[name] = {"binary_mb": os.path.getsize(os.path.join(BIN, name)) / 1e6}
    mesh = Processes("processes.log")
    procs = mesh.procs
    try:
        for name, ms in mesh.cold_start_ms.items():
            out[name]["cold_start_ms"] = ms

        time.sleep(2)
        idle_cpu = mesh.cpu()
        time.sleep(5)
        for name, proc in procs.items():
            out[name]["idle_rss_mb"] = rss_mb(proc.pid)
            out[name]["idle_huge_pages_mb"] = huge_pages_mb(proc.pid)
            out[name]["idle_cpu_pct"] = (cpu_seconds(proc.pid) - idle_cpu[name]) / 5 * 100

        # Under load: the old system's flow through the gateway (bookings with pets and infants,
        # catalog, bookings and stats reads), 16 clients.
        before = mesh.cpu()
        started = time.time()
        flow = loadgen("--scenario", "flow", "--via", "rest", "--gateway", GATEWAY,
                       "--concurrency", "16", "--flights", "100")
        elapsed = time.time() - started
        for name, proc in procs.items():
            out[name]["load_cpu_pct"] = (cpu_seconds(proc.pid) - before[name]) / elapsed * 100
            out[name]["load_peak_rss_mb"] = rss_mb(proc.pid, "VmHWM")
        results["flow_rest_c16"] = flow

        # The gateway's cost: the same bookings over REST and straight to bookings over gRPC.
        overhead = {}
        for via in ("grpc", "rest"):
            overhead[via] = loadgen("--scenario", "bookings", "--via", via, *SEPARATE,
                                    "--concurrency", "16", "--flights", "100")
        results["gateway_overhead"] = overhead

        results["verify"] = verify("120s")
    finally:
        mesh.stop()
    results["processes"] = out


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
LAG_RUNS = int(os.environ.get("BENCH_LAG_RUNS", "3"))
PIPELINE_RUNS = int(os.environ.get("BENCH_PIPELINE_RUNS", "3"))


def bench_pipeline(results):
    """What the event pipeline costs us, next to what it costs RabbitMQ: bookings at a steady
    2,000/s over gRPC, each service its own process, PIPELINE_RUNS times with the outbox relays
    off, then on, alternating. Per booking (one event each): bookings' CPU (the relay runs in its
    process: its share is on − off), the stats worker's (idle when off: on − off is its share) and
    RabbitMQ's; the median of the runs is the figure."""
    runs = {"off": [], "on": []}
    for _ in range(PIPELINE_RUNS):
        for mode, extra in (("off", RELAYS_OFF), ("on", {})):
            mesh = Processes("pipeline.log", **extra)
            try:
                run, cpu_us = steady_bookings(mesh, 2000)
                figures = {name: cpu_us[name] for name in ("bookings", "stats-worker", "rabbitmq")}
                figures["throughput"] = run["throughput"]
                if mode == "on":
                    figures["verify_agrees"] = verify("120s")["agrees"]
                runs[mode].append(figures)
                print("pipeline", mode, figures, flush=True)
            finally:
                mesh.stop()

    def med(mode, name):
        return median([r[name] for r in runs[mode]])

    results["pipeline"] = {
        "runs": runs,
        "relay_us": med("on", "bookings") - med("off", "bookings"),
        "worker_us": med("on", "stats-worker") - med("off", "stats-worker"),
        "rabbitmq_us": med("on", "rabbitmq") - med("off", "rabbitmq"),
    }


def bench_rounds(results):
    """pgbench, gRPC to bookings and REST through the gateway, alternating, ROUNDS times (16
    clients, 100 flights, booking path, each service its own process), with the CPU time per
    booking of PostgreSQL, of each service and of the client in each run. The ratios are taken
    as the median of the rounds: drift between runs (the machine's other load, PostgreSQL's
    state) shows as a spread, not as a ratio."""
    fresh_db(PGBENCH_DB)
    sh(os.path.join(BIN, "bookings"), "migrate", env=base_env({"DATABASE_URL": f"{PG}/{PGBENCH_DB}"}))
    mesh = Processes("rounds.log", **RELAYS_OFF)
    rounds = []
    try:
        for number in range(1, ROUNDS + 1):
            row = {}
            flushes, idle = wal_flushes(), machine_idle()
            pg, client = postgres_cpu_seconds(), children_cpu_seconds()
            run = pgbench(16, 100)
            done = run["throughput"] * float(DURATION.rstrip("s"))
            row["pgbench"] = {"throughput": run["throughput"], "postgres_us": (postgres_cpu_seconds() - pg) / done * 1e6,
                              "client_us": (children_cpu_seconds() - client) / done * 1e6, "services_us": {},
                              **how_busy(idle, flushes, done)}
            for via in ("grpc", "rest"):
                flushes, idle = wal_flushes(), machine_idle()
                pg, client, services = postgres_cpu_seconds(), children_cpu_seconds(), mesh.cpu()
                run = loadgen("--scenario", "bookings", "--via", via, *SEPARATE, "--concurrency", "16",
                              "--flights", "100")
                done = bookings_done(run)
                after = mesh.cpu()
                row[via] = {"throughput": run["throughput"], "p99_ms": run["p99_ms"],
                            "postgres_us": (postgres_cpu_seconds() - pg) / done * 1e6,
                            "client_us": (children_cpu_seconds() - client) / done * 1e6,
                            "services_us": {name: (after[name] - services[name]) / done * 1e6 for name in after},
                            **how_busy(idle, flushes, done)}
            print("round", number, {k: round(v["throughput"]) for k, v in row.items()}, flush=True)
            rounds.append(row)
    finally:
        mesh.stop()
    results["rounds"] = rounds


def machine_idle():
    """The machine's (idle + I/O wait, all) CPU time so far, in clock ticks (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(field) for field in f.readline().split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


def wal_flushes():
    """How many times PostgreSQL has flushed its WAL to disk (pg_stat_wal, PostgreSQL 14+)."""
    return int(psql("SELECT wal_sync FROM pg_stat_wal"))


def how_busy(idle_before, flushes_before, done):
    """Since `idle_before` and `flushes_before`: the share of the cores left idle, and the WAL
    flushes per booking (how many commits each flush carried). With the CPU per booking, these
    say what a ratio is made of: a run can spend less per booking and still book less, if it
    keeps the cores less busy."""
    idle, total = machine_idle()
    return {"idle_share": (idle - idle_before[0]) / (total - idle_before[1]),
            "wal_flushes_per_booking": (wal_flushes() - flushes_before) / done}


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def pids_named(names):
    """The processes whose command name is one of `names`."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() in names:
                        pids.append(int(pid))
            except OSError:
                pass  # exited meanwhile
    return pids


def postgres_pids():
    return pids_named({"postgres"})


def comm_cpu_seconds(names, reaped_children=False):
    """CPU time so far of the processes whose command name is one of `names` (see `cpu_seconds`)."""
    total = 0.0
    for pid in pids_named(names):
        try:
            total += cpu_seconds(pid, reaped_children)
        except OSError:
            pass  # exited meanwhile
    return total


def postgres_cpu_seconds():
    """CPU time of PostgreSQL so far: its live processes, and the backends that exited (pgbench's,
    reaped by the postmaster)."""
    return comm_cpu_seconds({"postgres"}, reaped_children=True)


def rabbitmq_cpu_seconds():
    return comm_cpu_seconds({"beam.smp", "erl_child_setup", "epmd", "inet_gethost"})


def redis_cpu_seconds():
    return comm_cpu_seconds({"redis-server"})


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_cpu(results):
    """Where the CPU goes per booking, 16 clients over 100 flights: PostgreSQL, the services
    (`flightmesh up`, booking path only) and the client, for pgbench and for the service path."""
    out = {}
    fresh_db(PGBENCH_DB)
    sh(os.path.join(BIN, "bookings"), "migrate", env=base_env({"DATABASE_URL": f"{PG}/{PGBENCH_DB}"}))
    pg, client = postgres_cpu_seconds(), children_cpu_seconds()
    run = pgbench(16, 100)
    seconds = float(DURATION.rstrip("s"))
    done = run["throughput"] * seconds
    out["pgbench"] = {"throughput": run["throughput"],
                      "postgres_us": (postgres_cpu_seconds() - pg) / done * 1e6,
                      "services_us": 0.0,
                      "client_us": (children_cpu_seconds() - client) / done * 1e6}
    mesh = Mesh(**RELAYS_OFF_MESH)
    try:
        for via in ("grpc", "rest"):
            pg, client, services = postgres_cpu_seconds(), children_cpu_seconds(), cpu_seconds(mesh.proc.pid)
            run = loadgen("--scenario", "bookings", "--via", via, "--concurrency", "16", "--flights", "100")
            done = bookings_done(run)
            out[via] = {"throughput": run["throughput"],
                        "postgres_us": (postgres_cpu_seconds() - pg) / done * 1e6,
                        "services_us": (cpu_seconds(mesh.proc.pid) - services) / done * 1e6,
                        "client_us": (children_cpu_seconds() - client) / done * 1e6}
            print("cpu", via, out[via], flush=True)
    finally:
        mesh.stop()
    results["cpu"] = out


def bench_pinned(results):
    """The deployment shape on one machine: PostgreSQL alone on CPU 0 (its running processes, and
    the backends the postmaster forks from now on), pgbench or the services and the client on CPU
    1. 16 clients, 100 flights, booking path. Needs the right to change PostgreSQL's affinity
    (root, or the postgres user); restores it at the end."""
    saved = {}
    for pid in postgres_pids():
        try:
            saved[pid] = os.sched_getaffinity(pid)
        except OSError:
            pass  # exited meanwhile
    out = {}
    try:
        for pid in saved:
            os.sched_setaffinity(pid, {0})
        fresh_db(PGBENCH_DB)
        sh(os.path.join(BIN, "bookings"), "migrate", env=base_env({"DATABASE_URL": f"{PG}/{PGBENCH_DB}"}))
        out["pgbench"] = pgbench(16, 100, cpus="1")
        print("pinned pgbench", out["pgbench"], flush=True)
        mesh = Mesh(cpus="1", **RELAYS_OFF_MESH)
        try:
            for via in ("grpc", "rest"):
                out[via] = loadgen("--scenario", "bookings", "--via", via, "--concurrency", "16", "--flights", "100",
                                   cpus="1")
                print("pinned", via, round(out[via]["throughput"]), flush=True)
        finally:
            mesh.stop()
    finally:
        for pid, cpus in saved.items():
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError:
                pass  # a backend that has exited meanwhile
    results["pinned"] = out


def bench_overload(results):
    """See the module docs: `overload`."""
    import threading

    # Both ends hold a descriptor per connection: 2,000 clients and 2,000 accepted sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    runs = {
        "before": {"MAX_CONCURRENT_REQUESTS": "1000000", "CATALOG_CACHE_TTL": "0s", "SEATS_CACHE_TTL": "0s"},
        "after": {},
    }
    out = {}
    for name, extra in runs.items():
        mesh = Mesh(**extra)
        polls = {"gateway": [0, 0], "flights": [0, 0]}  # [polls, not ready]
        stop = threading.Event()

        def poll():
            urls = {"gateway": "http://127.0.0.1:8081/readyz", "flights": "http://127.0.0.1:51051/readyz"}
            while not stop.is_set():
                for who, url in urls.items():
                    ready = False
                    try:
                        with urllib.request.urlopen(url, timeout=2) as response:
                            ready = response.status == 200
                    except Exception:
                        pass
                    polls[who][0] += 1
                    polls[who][1] += 0 if ready else 1
                time.sleep(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            summary = loadgen("--scenario", "catalog", "--concurrency", "2000", "--flights", "126",
                              "--duration", "20s", "--warmup", "2s")
        finally:
            stop.set()
            poller.join()
            mesh.stop()
        summary["readiness"] = {who: {"polls": n, "not_ready": bad} for who, (n, bad) in polls.items()}
        out[name] = summary
        print(f"overload {name}: {json.dumps(summary)}", flush=True)
    results["overload"] = out


def bench_broker(results):
    """RabbitMQ alone: publish with confirms (each, pipelined) and consume with acks."""
    rabbit = rabbitmq_cpu_seconds()
    out = sh(os.path.join(BIN, "loadgen"), "broker", "--messages", "50000", "--json")
    results["broker"] = json.loads(out.strip().splitlines()[-1])
    # Each of the 100,000 messages (both publish phases) is published, confirmed, delivered and
    # acked once: RabbitMQ's CPU per event of the pipeline. An upper bound: half were confirmed
    # one at a time, which costs more than the relay's pipelined confirms.
    results["broker"]["rabbitmq_us_per_message"] = (rabbitmq_cpu_seconds() - rabbit) / 100_000 * 1e6
    # The pipeline's pattern alone: confirms pipelined as the relay's, consumption with the stats
    # worker's defaults (prefetch 32, one `multiple` ack per 16): RabbitMQ's own cost per event,
    # to set beside its CPU per event in the pipeline (the `pipeline` section).
    rabbit = rabbitmq_cpu_seconds()
    out = sh(os.path.join(BIN, "loadgen"), "broker", "--messages", "50000", "--pipelined-only", "--prefetch", "32",
             "--ack-batch", "16", "--json")
    results["broker"]["pipelined"] = json.loads(out.strip().splitlines()[-1])
    results["broker"]["pipelined"]["rabbitmq_us_per_message"] = (rabbitmq_cpu_seconds() - rabbit) / 50_000 * 1e6
    print("broker", results["broker"], flush=True)


def build():
    """Builds the binaries of PROFILE, unless BENCH_BIN names kept ones (bench/profile.py too)."""
    if os.environ.get("BENCH_BIN"):
        print(f"the binaries of {BIN}", flush=True)
        return
    print(f"building the {PROFILE} binaries…", flush=True)
    sh("cargo", "build", "--profile", PROFILE, "--locked", "-p", "flightmesh", "-p", "flightmesh-loadgen",
       "-p", "flightmesh-flights", "-p", "flightmesh-bookings", "-p", "flightmesh-stats-worker",
       "-p", "flightmesh-ai-agent", "-p", "flightmesh-gateway", capture=False)


def main():
    if sys.argv[1:] == ["--pgbench-script"]:
        # The baseline's script, to run pgbench by hand (README, "Load").
        print(pgbench_script(), end="")
        return
    if sys.argv[1:] == ["--render"]:
        # Re-render bench/results/latest.md from latest.json, without running anything.
        with open(os.path.join(ROOT, "bench", "results", "latest.json")) as f:
            write_markdown(json.load(f))
        return
    runners = {"rounds": bench_rounds, "bookings": bench_bookings, "cpu": bench_cpu, "pinned": bench_pinned,
               "stats": bench_stats, "pipeline": bench_pipeline, "processes": bench_processes,
               "broker": bench_broker, "overload": bench_overload}
    unknown = [word for word in sys.argv[1:] if word not in runners]
    if unknown:
        # `--help`, a typo: say what runs instead of starting a half-hour run of everything.
        print(__doc__)
        if unknown not in (["--help"], ["-h"]):
            print(f"unknown section: {' '.join(unknown)}", file=sys.stderr)
            sys.exit(2)
        return
    sections = sys.argv[1:] or ["broker", "rounds", "bookings", "cpu", "pinned", "stats", "pipeline", "processes"]
    build()
    path = os.path.join(ROOT, "bench", "results", "latest.json")
    results = {}
    if sys.argv[1:] and os.path.exists(path):
        # Some sections only: the others keep their figures from the last run.
        with open(path) as f:
            results = json.load(f)
    results["machine"] = {"cpus": os.cpu_count(), "kernel": os.uname().release,
                          "postgres": psql("SHOW server_version"), "date": time.strftime("%Y-%m-%d")}
    try:
        for section in sections:
            runners[section](results)
    except BaseException:
        # Keep what the finished sections measured (latest.json is written only by a whole run).
        partial = os.path.join(ROOT, "bench", "results", "partial.json")
        with open(partial, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"stopped; the finished sections' figures are in {partial}", flush=True)
        raise
    finally:
        clean_up()
    with open(path, "w") as f:
        json.dump(results, f, indent=2, default=str)
    write_markdown(results)
    print(json.dumps(results, indent=2, default=str))


def render(results):
    """The tables of docs/benchmarks.md, from whichever sections ran."""
    m = results["machine"]
    out = [f"Machine: {m['cpus']} CPUs, Linux {m['kernel']}, PostgreSQL {m['postgres'].strip()}, {m['date']}.", ""]
    if "broker" in results:
        b = results["broker"]
        out += ["### RabbitMQ alone", "",
                "| publish + confirm, one at a time | publish + confirms, pipelined | consume + ack |",
                "|---|---|---|",
                f"| {b['publish_confirm_each_per_s']:.0f}/s | {b['publish_confirm_batched_per_s']:.0f}/s "
                f"| {b['consume_ack_per_s']:.0f}/s |", ""]
        if "rabbitmq_us_per_message" in b:
            out += [f"RabbitMQ's CPU per message published, confirmed, delivered and acked: "
                    f"{b['rabbitmq_us_per_message']:.0f} µs (an upper bound: half were confirmed one at a time).", ""]
        if "pipelined" in b:
            pb = b["pipelined"]
            out += [f"The pipeline's pattern alone (confirms pipelined in batches of 500, consumed with prefetch 32 "
                    f"and one ack per 16 deliveries): {pb['publish_confirm_batched_per_s']:.0f}/s published, "
                    f"{pb['consume_ack_per_s']:.0f}/s consumed, RabbitMQ's CPU per message "
                    f"**{pb['rabbitmq_us_per_message']:.0f} µs**.", ""]
    if "rounds" in results:
        out += render_rounds(results["rounds"])
    if "bookings_table" in results:
        out += ["### Bookings/s and latency, ratio to pgbench", "", results["bookings_table"], ""]
        if "bookings_verify" in results:
            v = results["bookings_verify"]
            out += [f"After the full-pipeline runs, `loadgen verify`: Redis == PostgreSQL "
                    f"**{'yes' if v['agrees'] else 'NO'}**.", "", "```", v["report"].strip(), "```", ""]
    if "cpu" in results:
        c = results["cpu"]
        out += ["### CPU per booking (16 clients, 100 flights, booking path)", "",
                "| run | bookings/s | PostgreSQL | services | client | total |", "|---|---|---|---|---|---|"]
        for run, label in (("pgbench", "pgbench"), ("grpc", "gRPC to bookings"), ("rest", "REST through the gateway")):
            r = c[run]
            total = r["postgres_us"] + r["services_us"] + r["client_us"]
            out.append(f"| {label} | {r['throughput']:.0f} | {r['postgres_us']:.0f} µs | {r['services_us']:.0f} µs "
                       f"| {r['client_us']:.0f} µs | {total:.0f} µs |")
        out.append("")
    if "pinned" in results:
        pn = results["pinned"]
        base = pn["pgbench"]["throughput"]
        out += ["### PostgreSQL on a core of its own (16 clients, 100 flights, booking path)", "",
                "| run (on CPU 1; PostgreSQL on CPU 0) | bookings/s | ratio to pgbench | p50 / p99 |", "|---|---|---|---|",
                f"| pgbench | {base:.0f} | 100% | {pn['pgbench']['latency_avg_ms']:.1f} ms (mean) |"]
        for via, label in (("grpc", "gRPC to bookings"), ("rest", "REST through the gateway")):
            r = pn[via]
            out.append(f"| {label} | {r['throughput']:.0f} | {r['throughput'] / base:.0%} "
                       f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms |")
        out.append("")
    if "stats" in results:
        s = results["stats"]
        out += ["### Stats worker", "", "| measure | value |", "|---|---|"]
        for prefetch in (1, 50):
            r = s.get(f"prefetch {prefetch}")
            if r:
                out.append(f"| events/s, prefetch {prefetch} ({r['events']} queued events drained) "
                           f"| {r['events_per_s']:.0f} |")
        lag_runs = [(key, r) for key, r in s.items() if key.startswith("lag at")]
        for key, r in lag_runs:
            out.append(f"| event {key} bookings (commit → applied in Redis), p50 / p99 "
                       f"| {r['p50_ms']:.1f} ms / {r['p99_ms']:.1f} ms |")
        out.append("")
        if lag_runs and "cpu_us" in lag_runs[0][1]:
            names = list(lag_runs[0][1]["cpu_us"])
            out += ["CPU time per event in those runs (each service its own process):", "",
                    "| run | bookings/s | " + " | ".join(names) + " | verify |",
                    "|---|---|" + "---|" * len(names) + "---|"]
            for key, r in lag_runs:
                out.append(f"| {key} | {r['throughput']:.0f} | "
                           + " | ".join(f"{r['cpu_us'][n]:.0f} µs" for n in names)
                           + f" | {'agrees' if r['verify_agrees'] else 'DIFFERS'} |")
            out.append("")
    if "pipeline" in results:
        out += render_pipeline(results["pipeline"])
    if "processes" in results:
        p = results["processes"]
        out += ["### Each service as its own process", "",
                "| service | binary (stripped) | cold start | idle RSS (of it in huge pages) | idle CPU | load RSS (peak) "
                "| load CPU |", "|---|---|---|---|---|---|---|"]
        for name, r in p.items():
            out.append(f"| {name} | {r['binary_mb']:.1f} MB | {r['cold_start_ms']:.0f} ms | {r['idle_rss_mb']:.1f} MB "
                       f"({r.get('idle_huge_pages_mb', 0):.0f} MB) "
                       f"| {r['idle_cpu_pct']:.1f}% | {r['load_peak_rss_mb']:.1f} MB | {r['load_cpu_pct']:.0f}% |")
        out.append("")
        if "flow_rest_c16" in results:
            f = results["flow_rest_c16"]
            out += [f"Load: the flow scenario over REST, 16 clients: {f['throughput']:.0f} requests/s, "
                    f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, outcomes {f['outcomes']}", ""]
        if "gateway_overhead" in results:
            g, r = results["gateway_overhead"]["grpc"], results["gateway_overhead"]["rest"]
            out += ["Gateway overhead (the same bookings, 16 clients, 100 flights, separate processes):", "",
                    "| via | bookings/s | p50 | p99 |", "|---|---|---|---|",
                    f"| gRPC to bookings | {g['throughput']:.0f} | {g['p50_ms']:.2f} ms | {g['p99_ms']:.2f} ms |",
                    f"| REST through the gateway | {r['throughput']:.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms |",
                    f"| REST − gRPC | {r['throughput'] - g['throughput']:+.0f} | {r['p50_ms'] - g['p50_ms']:+.2f} ms "
                    f"| {r['p99_ms'] - g['p99_ms']:+.2f} ms |", ""]
        if "verify" in results:
            v = results["verify"]
            out += [f"`loadgen verify` at the end: Redis == PostgreSQL **{'yes' if v['agrees'] else 'NO'}**.", "",
                    "```", v["report"].strip(), "```", ""]
    if "overload" in results:
        o = results["overload"]
        out += ["### Overload: 2,000 connections reading the catalog", "",
                "| run | answered 200/s | mean latency (200s) | p50 / p99 (200s) | 503s | not-ok p50 / p99 / max "
                "| /readyz not ready (gateway, flights) |", "|---|---|---|---|---|---|---|"]
        for name, label in (("before", "before: no shedding, no cache"), ("after", "after: the defaults")):
            r = o.get(name)
            if not r:
                continue
            not_ok = r["total"] - r["ok"]
            ready = r["readiness"]
            out.append(f"| {label} | {r['throughput']:.0f} | {r.get('mean_ms', r['p50_ms']):.1f} ms "
                       f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms | {r['outcomes'].get('503', 0)} of {r['total']} "
                       f"| {r['failed_p50_ms']:.1f} / {r['failed_p99_ms']:.1f} / {r['failed_max_ms']:.0f} ms "
                       f"| {ready['gateway']['not_ready']} / {ready['flights']['not_ready']} of "
                       f"{ready['gateway']['polls']} polls |" if not_ok else
                       f"| {label} | {r['throughput']:.0f} | {r.get('mean_ms', r['p50_ms']):.1f} ms "
                       f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms | 0 of {r['total']} | — "
                       f"| {ready['gateway']['not_ready']} / {ready['flights']['not_ready']} of "
                       f"{ready['gateway']['polls']} polls |")
        out.append("")
    return "\n".join(out)


def render_pipeline(pipeline):
    """The pipeline section's runs and the relay's, the worker's and RabbitMQ's CPU per event."""
    out = ["### The event pipeline's CPU per event", "",
           "| run | bookings/s | bookings | stats worker | RabbitMQ | verify |", "|---|---|---|---|---|---|"]
    for mode, label in (("off", "pipeline off"), ("on", "pipeline on")):
        for number, r in enumerate(pipeline["runs"][mode], 1):
            verified = {True: "agrees", False: "DIFFERS"}.get(r.get("verify_agrees"), "—")
            out.append(f"| {label}, run {number} | {r['throughput']:.0f} | {r['bookings']:.0f} µs "
                       f"| {r['stats-worker']:.0f} µs | {r['rabbitmq']:.0f} µs | {verified} |")
    relay, worker = pipeline["relay_us"], pipeline["worker_us"]
    out += ["", f"Medians, on − off: the relay {relay:.0f} µs per event, the stats worker {worker:.0f} µs, "
                f"together {relay + worker:.0f} µs; RabbitMQ {pipeline['rabbitmq_us']:.0f} µs.", ""]
    return out


def render_rounds(rounds):
    """The interleaved rounds: rates and ratios per round and their median; CPU per booking."""
    out = [f"### Interleaved rounds: pgbench, gRPC, REST, {len(rounds)} times (16 clients, 100 flights, booking path, "
           "each service its own process)", "",
           "| round | pgbench tx/s | gRPC to bookings /s (ratio) | REST through the gateway /s (ratio) |",
           "|---|---|---|---|"]
    ratios = {"grpc": [], "rest": []}
    for number, r in enumerate(rounds, 1):
        base = r["pgbench"]["throughput"]
        cells = []
        for via in ("grpc", "rest"):
            ratios[via].append(r[via]["throughput"] / base)
            cells.append(f"{r[via]['throughput']:.0f} ({r[via]['throughput'] / base:.0%})")
        out.append(f"| {number} | {base:.0f} | " + " | ".join(cells) + " |")
    spread = {via: f"{min(v):.0%}–{max(v):.0%}" for via, v in ratios.items()}
    out += [f"| **median** | {median([r['pgbench']['throughput'] for r in rounds]):.0f} "
            f"| {median([r['grpc']['throughput'] for r in rounds]):.0f} (**{median(ratios['grpc']):.0%}**; "
            f"spread {spread['grpc']}) "
            f"| {median([r['rest']['throughput'] for r in rounds]):.0f} (**{median(ratios['rest']):.0%}**; "
            f"spread {spread['rest']}) |", "",
            "CPU time per booking, the median of the rounds:", "",
            "| run | PostgreSQL | gateway | bookings | flights | client | total |", "|---|---|---|---|---|---|---|"]
    for run, label in (("pgbench", "pgbench"), ("grpc", "gRPC to bookings"), ("rest", "REST through the gateway")):
        cells = [median([r[run]["postgres_us"] for r in rounds])]
        cells += [median([r[run]["services_us"].get(name, 0.0) for r in rounds]) for name in ("gateway", "bookings", "flights")]
        cells.append(median([r[run]["client_us"] for r in rounds]))
        out.append(f"| {label} | " + " | ".join(f"{c:.0f} µs" for c in cells) + f" | {sum(cells):.0f} µs |")
    out.append("")
    if all("idle_share" in r[run] for r in rounds for run in ("pgbench", "grpc", "rest")):
        out += ["How busy each run kept the machine, the median of the rounds: the cores' idle share (idle and "
                f"I/O wait, /proc/stat), the cores busy (of the machine's {os.cpu_count()}), and PostgreSQL's WAL flushes per "
                "booking (pg_stat_wal; fewer means more commits per flush):", "",
                "| run | cores idle | cores busy | WAL flushes per booking |", "|---|---|---|---|"]
        for run, label in (("pgbench", "pgbench"), ("grpc", "gRPC to bookings"), ("rest", "REST through the gateway")):
            idle = median([r[run]["idle_share"] for r in rounds])
            flushes = median([r[run]["wal_flushes_per_booking"] for r in rounds])
            out.append(f"| {label} | {idle:.1%} | {os.cpu_count() * (1 - idle):.2f} | {flushes:.2f} |")
        out.append("")
    return out


def write_markdown(results):
    with open(os.path.join(ROOT, "bench", "results", "latest.md"), "w") as f:
        f.write(render(results))


if __name__ == "__main__":
    main()
