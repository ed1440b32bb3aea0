#!/usr/bin/env python3
"""Where a REST booking's CPU goes in the gateway and in bookings, by sampling:

    python3 bench/profile.py [--via rest|grpc] [--seconds N]

Builds the `profiling` profile (release code with line tables), starts each service as its own
process as `bench/run.py rounds` does (booking path, relays off), drives bookings with the load
generator (16 clients, 100 flights) and meanwhile records each service with
`perf record --call-graph dwarf`. Writes, per service, the functions by self time and by
inclusive time to bench/results/profile-<service>.txt and prints the top of each.

perf samples the CPU clock here (this machine's perf has no hardware counters): figures are shares
of the process's own CPU time, valid however busy the other core is.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_PROFILE", "profiling")
import run  # noqa: E402  (reads BENCH_PROFILE for its binaries' directory)

SERVICES = ("gateway", "bookings")


def report(data, sort_children):
    args = ["perf", "report", "-i", data, "--stdio", "--percent-limit", "0.7", "--sort", "symbol",
            "-g", "none"]
    args.append("--children" if sort_children else "--no-children")
    out = subprocess.run(args, capture_output=True, text=True).stdout
    # perf pads each line to the terminal's width with empty columns; keep the text only.
    return "\n".join(re.sub(r"\s+-\s+-\s*$", "", line).rstrip() for line in out.splitlines())


def main():
    via = sys.argv[sys.argv.index("--via") + 1] if "--via" in sys.argv else "rest"
    seconds = sys.argv[sys.argv.index("--seconds") + 1] if "--seconds" in sys.argv else "15"
    print("building the profiling binaries…", flush=True)
    run.sh("cargo", "build", "--profile", "profiling", "--locked", "-p", "flightmesh-loadgen",
           "-p", "flightmesh-flights", "-p", "flightmesh-bookings", "-p", "flightmesh-stats-worker",
           "-p", "flightmesh-ai-agent", "-p", "flightmesh-gateway", capture=False)
    mesh = run.Processes("profile.log", **run.RELAYS_OFF)
    out = os.path.join(run.ROOT, "bench", "results")
    try:
        # Warm: the pools filled, the flights cached.
        run.loadgen("--scenario", "bookings", "--via", via, *run.SEPARATE, "--concurrency", "16",
                    "--flights", "100")
        recorders = {
            name: subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-q",
                                    "-o", os.path.join(out, f"perf-{name}.data"), "-p",
                                    str(mesh.procs[name].pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in SERVICES
        }
        time.sleep(0.5)
        before = mesh.cpu()
        result = subprocess.run([os.path.join(run.BIN, "loadgen"), "run", "--json", "--duration",
                                 f"{seconds}s", "--warmup", run.WARMUP, "--scenario", "bookings", "--via", via,
                                 *run.SEPARATE, "--concurrency", "16", "--flights", "100"],
                                cwd=run.ROOT, check=True, capture_output=True, text=True).stdout
        after = mesh.cpu()
        for recorder in recorders.values():
            recorder.send_signal(2)
        for recorder in recorders.values():
            recorder.wait(timeout=300)
    finally:
        mesh.stop()
    figures = run.json.loads(result.strip().splitlines()[-1])
    done = run.bookings_done(figures)
    print(f"{figures['throughput']:.0f} bookings/s over {via}", flush=True)
    for name in SERVICES:
        data = os.path.join(out, f"perf-{name}.data")
        per_booking = (after[name] - before[name]) / done * 1e6
        self_time, inclusive = report(data, False), report(data, True)
        with open(os.path.join(out, f"profile-{name}.txt"), "w") as f:
            f.write(f"# {name}: {per_booking:.0f} µs CPU per booking over {via} "
                    f"({figures['throughput']:.0f}/s, 16 clients, 100 flights)\n")
            f.write("\n# self time\n" + self_time + "\n# inclusive time\n" + inclusive)
        top = [line for line in self_time.splitlines() if line.strip() and not line.startswith("#")][:25]
        print(f"\n{name}: {per_booking:.0f} µs per booking; self time:", *top, sep="\n", flush=True)


if __name__ == "__main__":
    main()
