#!/usr/bin/env python3
"""Where a REST booking's CPU goes in the gateway and in bookings, by sampling:

    python3 bench/profile.py [--via rest|grpc] [--seconds N]
    python3 bench/profile.py --pipeline [--seconds N]

Builds the `profiling` profile (release code with line tables; BENCH_BIN=<dir> takes kept
profiling binaries instead, as bench/run.py does), starts each service as its own
process as `bench/run.py rounds` does (booking path, relays off), drives bookings with the load
generator (16 clients, 100 flights) and meanwhile records each service with
`perf record --call-graph dwarf`. Writes, per service, the functions by self time and by
inclusive time to bench/results/profile-<service>.txt and prints the top of each.

perf samples the CPU clock here (this machine's perf has no hardware counters): figures are shares
of the process's own CPU time, valid however busy the other core is.

`--pipeline` profiles the event path instead: the relays on, bookings at a steady 2,000/s over gRPC
(as `bench/run.py stats` measures the lag), and records bookings (with its outbox relay) and the
stats worker; results to bench/results/profile-pipeline-<service>.txt.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_PROFILE", "profiling")
import run  # noqa: E402  (reads BENCH_PROFILE for its binaries' directory)

PATH_SERVICES = ("gateway", "bookings")
PIPELINE_SERVICES = ("bookings", "stats-worker")

# What each sample was doing, by the first of these frames found in its stack (in this order);
# samples of lapin's I/O thread count as that thread whatever their stack.
TASKS = {
    "bookings": [("the outbox relay", "relay::"), ("lapin's internal RPC", "internal_rpc"),
                 ("Tokio's I/O driver (socket wake-ups)", "Driver::turn")],
    "stats-worker": [("acks", "Acker"), ("acks", "send_acks"), ("applying (the Lua script)", "apply::apply"),
                     ("decoding the event", "delivery::decode"), ("metrics", "metrics"),
                     ("the consume span", "Instrumented"), ("the rest of handling", "Consumer::handle"),
                     ("lapin's internal RPC", "internal_rpc"), ("Tokio's I/O driver (socket wake-ups)", "Driver::turn"),
                     ("the Redis connection", "redis::aio")],
}


def report(data, sort_children, sort="symbol"):
    args = ["perf", "report", "-i", data, "--stdio", "--percent-limit", "0.7", "--sort", sort,
            "-g", "none"]
    args.append("--children" if sort_children else "--no-children")
    out = subprocess.run(args, capture_output=True, text=True).stdout
    # perf pads each line to the terminal's width with empty columns; keep the text only.
    return "\n".join(re.sub(r"\s+-\s+-\s*$", "", line).rstrip() for line in out.splitlines())


def by_task(data, tasks):
    """Shares of the samples by task (TASKS), as a table."""
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"], capture_output=True,
                            text=True).stdout
    counts, total = {}, 0
    for sample in script.split("\n\n"):
        lines = sample.strip().splitlines()
        if not lines:
            continue
        total += 1
        stack = "\n".join(lines[1:])
        if lines[0].startswith("lapin"):
            task = "lapin's I/O thread"
        else:
            task = next((name for name, frame in tasks if frame in stack), "everything else")
        counts[task] = counts.get(task, 0) + 1
    return "\n".join(f"{100 * n / total:6.1f}%  {task}" for task, n in
                     sorted(counts.items(), key=lambda item: -item[1]))


def main():
    pipeline = "--pipeline" in sys.argv
    via = "grpc" if pipeline else (sys.argv[sys.argv.index("--via") + 1] if "--via" in sys.argv else "rest")
    seconds = sys.argv[sys.argv.index("--seconds") + 1] if "--seconds" in sys.argv else "15"
    services = PIPELINE_SERVICES if pipeline else PATH_SERVICES
    # The load: the rounds' closed loop on the booking path, or the lag runs' steady rate.
    load = ["--rate", "2000"] if pipeline else ["--concurrency", "16"]
    name_of = (lambda name: f"pipeline-{name}") if pipeline else (lambda name: name)
    run.build()
    mesh = run.Processes("profile.log", **({} if pipeline else run.RELAYS_OFF))
    out = os.path.join(run.ROOT, "bench", "results")
    try:
        # Warm: the pools filled, the flights cached.
        run.loadgen("--scenario", "bookings", "--via", via, *run.SEPARATE, *load, "--flights", "100")
        recorders = {
            name: subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,16384", "-q",
                                    "-o", os.path.join(out, f"perf-{name_of(name)}.data"), "-p",
                                    str(mesh.procs[name].pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in services
        }
        time.sleep(0.5)
        before = mesh.cpu()
        result = subprocess.run([os.path.join(run.BIN, "loadgen"), "run", "--json", "--duration",
                                 f"{seconds}s", "--warmup", run.WARMUP, "--scenario", "bookings", "--via", via,
                                 *run.SEPARATE, *load, "--flights", "100"],
                                cwd=run.ROOT, check=True, capture_output=True, text=True).stdout
        if pipeline:
            time.sleep(1)  # the last events through the relay and the worker
        after = mesh.cpu()
        for recorder in recorders.values():
            recorder.send_signal(2)
        for recorder in recorders.values():
            recorder.wait(timeout=300)
    finally:
        mesh.stop()
        run.clean_up()
    figures = run.json.loads(result.strip().splitlines()[-1])
    done = run.bookings_done(figures)
    shape = f"{figures['throughput']:.0f}/s, " + ("steady rate, relays on" if pipeline else "16 clients")
    print(f"{figures['throughput']:.0f} bookings/s over {via}", flush=True)
    for name in services:
        data = os.path.join(out, f"perf-{name_of(name)}.data")
        per_booking = (after[name] - before[name]) / done * 1e6
        self_time, inclusive = report(data, False), report(data, True)
        with open(os.path.join(out, f"profile-{name_of(name)}.txt"), "w") as f:
            f.write(f"# {name}: {per_booking:.0f} µs CPU per booking over {via} ({shape}, 100 flights)\n")
            # By thread: lapin's I/O runs on a thread of its own, beside the runtime's.
            f.write("\n# by thread\n" + report(data, False, "comm"))
            if pipeline:
                f.write("\n# by task\n" + by_task(data, TASKS[name]) + "\n")
            f.write("\n# self time\n" + self_time + "\n# inclusive time\n" + inclusive)
        top = [line for line in self_time.splitlines() if line.strip() and not line.startswith("#")][:25]
        print(f"\n{name}: {per_booking:.0f} µs per booking; self time:", *top, sep="\n", flush=True)


if __name__ == "__main__":
    main()
