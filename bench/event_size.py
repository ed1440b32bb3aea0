#!/usr/bin/env python3
"""Does the baseline's small event make pgbench cheaper than the service? pgbench runs the
bookings service's own statement (bench/run.py, `--pgbench-script`) with a three-key event JSON
and a 59-byte payload, where the service writes fourteen keys and about 155 bytes of protobuf:

    python3 bench/event_size.py [rounds]

On a fresh database (`bookings migrate` from the debug build), runs pgbench (16 clients, 100
flights, 10 s) with the baseline's event and with one of the service's size, alternating, for
`rounds` rounds (5 by default), and prints and writes (bench/results/event-size.json) the
bookings/s and PostgreSQL's CPU per booking of each run. About two minutes.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

DB = "fm_event_size"
# The service's event for a booking like pgbench's: BookingFields with the stamp (events.rs).
SERVICE_JSON = ("'" + json.dumps({
    "event_id": "0193d2ba-e408-7000-8000-000000000001", "event_type": "booking.created",
    "occurred_at": "2026-12-06T02:40:21.123456Z", "booking_id": 123456,
    "passenger_name": "Pasajero pgbench", "passenger_age": 34, "has_pet": False,
    "total_price": "950.00", "flight_id": 42, "flight_number": "PGB-42", "destination_id": 1,
    "destination_name": "Cartagena", "status": "confirmed", "user_id": None}) + "'")
# About the size of the service's BookingEvent protobuf (155 bytes).
SERVICE_PAYLOAD = "'\\x" + (bench.PGBENCH_VALUES[20][3:-1] * 3)[:310] + "'"


def script(service_sized):
    values = dict(bench.PGBENCH_VALUES)
    if service_sized:
        values[20], values[21] = SERVICE_PAYLOAD, SERVICE_JSON
    bench.PGBENCH_VALUES, baseline = values, bench.PGBENCH_VALUES
    try:
        text = bench.pgbench_script()
    finally:
        bench.PGBENCH_VALUES = baseline
    path = os.path.join(bench.TARGET, f"event-size-{'service' if service_sized else 'baseline'}.sql")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_once(service_sized):
    pg = bench.postgres_cpu_seconds()
    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared", "-c", "16",
                          "-j", "2", "-T", "10", "-D", "flights=100", "-f", script(service_sized), DB],
                         capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    return {"event": "service-sized" if service_sized else "baseline", "throughput": round(tps),
            "postgres_us": round((bench.postgres_cpu_seconds() - pg) / (tps * 10) * 1e6, 1)}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    bench.fresh_db(DB)
    subprocess.run([os.path.join(bench.TARGET, "debug", "bookings"), "migrate"], check=True, capture_output=True,
                   env=bench.base_env({"DATABASE_URL": f"{bench.PG}/{DB}"}))
    runs = []
    try:
        for round_ in range(rounds):
            for service_sized in (False, True):
                runs.append({"round": round_, **run_once(service_sized)})
                print(runs[-1], flush=True)
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB}"])
    for event in ("baseline", "service-sized"):
        costs = [r["postgres_us"] for r in runs if r["event"] == event]
        print(f"{event}: PostgreSQL µs per booking median {bench.median(costs)} ({min(costs)}–{max(costs)})")
    with open(os.path.join(ROOT, "bench", "results", "event-size.json"), "w") as f:
        json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
