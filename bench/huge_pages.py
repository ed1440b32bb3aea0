#!/usr/bin/env python3
"""The binaries' `no-thp` default (mimalloc asks for no transparent huge pages) against mimalloc
as it comes (it madvises its arenas MADV_HUGEPAGE, so a kernel in THP `madvise` mode backs them
with 2 MiB pages):

    python3 bench/huge_pages.py

Builds the release services as committed and once more without `no-thp` (in
target/huge-pages), then, for each, starts every service as its own process on a fresh database
and measures the idle RSS (and the part of it in huge pages) after 7 s; then books over REST (16
clients, 100 flights, booking path), twice, alternating, and prints bookings/s, p99, the CPU per
booking of the gateway and of bookings, and their peak RSS. About 15 minutes on two cores, most of
it the second build. Needs what bench/run.py needs.
"""

import importlib.util
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "bench", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

PACKAGES = ["-p", "flightmesh-flights", "-p", "flightmesh-bookings", "-p", "flightmesh-stats-worker",
            "-p", "flightmesh-ai-agent", "-p", "flightmesh-gateway", "-p", "flightmesh-loadgen"]
SERVICES = ("flights", "bookings", "stats-worker", "ai-agent", "gateway")


def build_with_huge_pages():
    """The same binaries with mimalloc but without their `no-thp` feature."""
    target = os.path.join(bench.TARGET, "huge-pages")
    subprocess.run(["cargo", "build", "--release", "--locked", "--no-default-features", "--features", "mimalloc",
                    *PACKAGES], cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return os.path.join(target, "release")


def idle(binaries):
    """Every service's idle RSS and huge pages, in MiB."""
    bench.BIN = binaries
    mesh = bench.Processes("huge-pages.log")
    try:
        time.sleep(7)
        return {name: (bench.rss_mb(p.pid), bench.huge_pages_mb(p.pid)) for name, p in mesh.procs.items()}
    finally:
        mesh.stop()


def under_load(binaries):
    """REST bookings through the gateway: rate, p99, CPU per booking and peak RSS per service."""
    bench.BIN = binaries
    mesh = bench.Processes("huge-pages.log", **bench.RELAYS_OFF)
    try:
        before = mesh.cpu()
        run = bench.loadgen("--scenario", "bookings", "--via", "rest", *bench.SEPARATE, "--concurrency", "16",
                            "--flights", "100")
        after = mesh.cpu()
        done = bench.bookings_done(run)
        per_booking = {name: (after[name] - before[name]) / done * 1e6 for name in after}
        peak = {name: bench.rss_mb(p.pid, "VmHWM") for name, p in mesh.procs.items()}
        return run, per_booking, peak
    finally:
        mesh.stop()


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", *PACKAGES], cwd=ROOT, check=True)
    builds = {"no-thp (default)": bench.BIN, "huge pages allowed": build_with_huge_pages()}
    try:
        print("| build | " + " | ".join(f"{s} idle RSS (huge pages)" for s in SERVICES) + " |")
        print("|---|" + "---|" * len(SERVICES))
        for name, binaries in builds.items():
            sizes = idle(binaries)
            print(f"| {name} | " + " | ".join(f"{sizes[s][0]:.1f} MiB ({sizes[s][1]:.0f})" for s in SERVICES) + " |",
                  flush=True)
        print()
        print("| round | build | REST bookings/s | p99 | gateway CPU/booking | bookings CPU/booking "
              "| gateway peak RSS | bookings peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for round_ in (1, 2):
            for name, binaries in builds.items():
                run, cpu, peak = under_load(binaries)
                print(f"| {round_} | {name} | {run['throughput']:.0f} | {run['p99_ms']:.1f} ms | {cpu['gateway']:.0f} µs "
                      f"| {cpu['bookings']:.0f} µs | {peak['gateway']:.1f} MiB | {peak['bookings']:.1f} MiB |", flush=True)
    finally:
        bench.clear_redis()
        bench.psql(f"DROP DATABASE IF EXISTS {bench.DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
