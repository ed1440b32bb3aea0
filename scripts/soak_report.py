#!/usr/bin/env python3
"""The soak's table and plot, from the samples `tools/faults/tests/soak.rs` writes (SOAK_OUT).

    python3 scripts/soak_report.py docs/soak/samples.json   # writes docs/soak/soak.svg, prints the table

No third-party packages: the plot is plain SVG (four panels: RSS per process, tables' rows, queue
depth, Redis memory), the table Markdown for docs/reliability.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def panel(x0: int, y0: int, w: int, h: int, title: str, unit: str, series: dict[str, list[tuple[float, float]]]) -> str:
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    ys = [y for pts in series.values() for _, y in pts] or [0, 1]
    xmax, ymax = max(xs) or 1, (max(ys) or 1) * 1.1
    out = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
           f'<text x="{x0 + 8}" y="{y0 + 16}" font-size="13" font-weight="bold">{title}</text>',
           f'<text x="{x0 + 4}" y="{y0 + h - 4}" font-size="10" fill="#666">0</text>',
           f'<text x="{x0 + 4}" y="{y0 + 30}" font-size="10" fill="#666">{ymax:.0f} {unit}</text>',
           f'<text x="{x0 + w - 40}" y="{y0 + h + 12}" font-size="10" fill="#666">{xmax / 60:.0f} min</text>']
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{x0 + x / xmax * w:.1f},{y0 + h - y / ymax * (h - 24):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        out.append(f'<text x="{x0 + w + 6}" y="{y0 + 14 + i * 13}" font-size="10" fill="{color}">{name}</text>')
    return "\n".join(out)


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/soak/samples.json")
    data = json.loads(path.read_text())
    samples = data["samples"]
    steady = samples[len(samples) // 3:]
    processes = sorted(samples[0]["rss_kib"])
    rss = {p: [(s["t"], s["rss_kib"].get(p, 0) / 1024) for s in samples] for p in processes}
    rows = {t: [(s["t"], s["rows"][t]) for s in samples] for t in samples[0]["rows"] if t != "bookings.bookings"}
    queue = {"stats queue": [(s["t"], s["queue_depth"]) for s in samples]}
    redis = {"used_memory": [(s["t"], s["redis_memory"] / 1_048_576) for s in samples]}
    w, h = 420, 200
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * (w + 150)}" height="{2 * (h + 40) + 20}" '
           'font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>',
           panel(10, 10, w, h, "RSS per process", "MiB", rss),
           panel(w + 160, 10, w, h, "Rows (retention-bound tables)", "rows", rows),
           panel(10, h + 60, w, h, "Stats queue depth", "msgs", queue),
           panel(w + 160, h + 60, w, h, "Redis used_memory", "MiB", redis),
           "</svg>"]
    out = path.with_name("soak.svg")
    out.write_text("\n".join(svg) + "\n")

    minutes = samples[-1]["t"] / 60
    print(f"{data['bookings']} bookings in {minutes:.0f} min at {data['rate']}/s requested; "
          f"outbox retention {data['outbox_retention_s']} s, idempotency keys {data['idempotency_retention_s']} s; "
          f"{len(samples)} samples, trends over the last two thirds.\n")
    print("| process | RSS first | RSS last | RSS trend | descriptors first → last |")
    print("|---|---|---|---|---|")
    for p in processes:
        trend = slope([(s["t"], s["rss_kib"].get(p, 0)) for s in steady]) * 60
        print(f"| {p} | {samples[0]['rss_kib'][p] / 1024:.1f} MiB | {samples[-1]['rss_kib'][p] / 1024:.1f} MiB "
              f"| {trend:+.0f} KiB/min | {samples[0]['fds'][p]} → {samples[-1]['fds'][p]} |")
    print()
    print("| measure | first | max | last | trend |")
    print("|---|---|---|---|---|")
    for table in samples[0]["rows"]:
        series = [s["rows"][table] for s in samples]
        trend = slope([(s["t"], s["rows"][table]) for s in steady]) * 60
        print(f"| rows of `{table}` | {series[0]} | {max(series)} | {series[-1]} | {trend:+.0f}/min |")
    for label, key, scale in (("stats queue depth", "queue_depth", 1), ("Redis keys", "redis_keys", 1),
                              ("Redis used_memory (KiB)", "redis_memory", 1 / 1024)):
        series = [s[key] * scale for s in samples]
        trend = slope([(s["t"], s[key] * scale) for s in steady]) * 60
        print(f"| {label} | {series[0]:.0f} | {max(series):.0f} | {series[-1]:.0f} | {trend:+.0f}/min |")
    print(f"\nplot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
