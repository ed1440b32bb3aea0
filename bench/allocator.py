#!/usr/bin/env python3
"""mimalloc (the global allocator of every flightmesh binary) against glibc's malloc:

    python3 bench/allocator.py

Builds the release mesh twice — as committed (the binaries' default `mimalloc` feature), and with
`--no-default-features` (the system allocator; in target/allocator-glibc) — then books over gRPC and
REST (16 clients, 100 flights, booking path only) with each, alternating, twice, and prints
bookings/s, the services' CPU per booking and their RSS. About 15 minutes on two cores, most of it
the second build. Needs what bench/run.py needs.
"""

import importlib.util
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PACKAGES = ["-p", "flightmesh", "-p", "flightmesh-loadgen"]


def build_glibc():
    """The same binaries without their `mimalloc` feature: glibc's malloc."""
    target = os.path.join(bench.TARGET, "allocator-glibc")
    subprocess.run(["cargo", "build", "--release", "--locked", "--no-default-features", *PACKAGES],
                   cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return os.path.join(target, "release")


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", *PACKAGES], cwd=ROOT, check=True)
    binaries = {"mimalloc": bench.BIN, "glibc": build_glibc()}
    print("| round | allocator | via | bookings/s | services' CPU per booking | p99 | services' RSS after |")
    print("|---|---|---|---|---|---|---|")
    try:
        for round_ in (1, 2):
            for name, binary in binaries.items():
                bench.BIN = binary
                mesh = bench.Mesh(**bench.RELAYS_OFF_MESH)
                try:
                    for via in ("grpc", "rest"):
                        before = bench.cpu_seconds(mesh.proc.pid)
                        run = bench.loadgen("--scenario", "bookings", "--via", via, "--concurrency", "16",
                                            "--flights", "100")
                        cpu_us = (bench.cpu_seconds(mesh.proc.pid) - before) / bench.bookings_done(run) * 1e6
                        print(f"| {round_} | {name} | {via} | {run['throughput']:.0f} | {cpu_us:.0f} µs "
                              f"| {run['p99_ms']:.1f} ms | {bench.rss_mb(mesh.proc.pid):.0f} MB |", flush=True)
                finally:
                    mesh.stop()
    finally:
        bench.clear_redis()
        bench.psql(f"DROP DATABASE IF EXISTS {bench.DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
