#!/usr/bin/env python3
"""Summarise the goodput benchmark and draw docs/goodput.png.

Reads crates/ferronet-bench/goodput.json (one JSON object per cell, written by
`scripts/goodput.sh`, i.e. `goodput --json`), prints a markdown summary (the cells the issue
names, and how often each stack is ahead), and, if matplotlib is installed, draws one panel
per link (rate x RTT) and loss at N = 8: goodput in % of the link rate per socket buffer size,
ferronet beside embassy-net 0.9, download and the weaker direction of `both`, with the bound
(window / RTT, link, and for loss the Mathis estimate) as a black tick.
"""
import json
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "goodput.json"
rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]


def worst(cell, stack):
    g = cell[stack]["goodput"]
    return min(x if x is not None else 0.0 for x in g)


def label(c):
    return (f"{c['rate'] // 1_000_000} Mbit/s, RTT {c['rtt_us'] / 1000:g} ms, loss {c['loss'] * 100:g} %, "
            f"N {c['queue']}, {c['workload']}, {c['buf'] // 1024} KiB")


# --- summary ------------------------------------------------------------------------------
stacks = [s for s in ("ferronet", "embassy") if s in rows[0]]
print(f"{len(rows)} cells, stacks: {', '.join(stacks)}\n")
if len(stacks) == 2:
    for loss in sorted({c["loss"] for c in rows}):
        sub = [c for c in rows if c["loss"] == loss]
        ahead = sum(1 for c in sub if worst(c, "ferronet") > worst(c, "embassy") + 0.005)
        behind = [c for c in sub if worst(c, "ferronet") < worst(c, "embassy") - 0.005]
        print(f"loss {loss * 100:g} %: {len(sub)} cells; ferronet ahead by more than 0.5 points "
              f"in {ahead}, within 0.5 points in {len(sub) - ahead - len(behind)}, behind in "
              f"{len(behind)}")
        for c in behind:
            print(f"  behind: {label(c)}: {worst(c, 'ferronet') * 100:.1f} against "
                  f"{worst(c, 'embassy') * 100:.1f}")
    for s in stacks:
        drops = [c for c in rows if c["loss"] == 0 and c[s]["queue_dropped"] > 0]
        wedged = [c for c in rows if c[s].get("stalled")]
        print(f"{s}: cells without loss that dropped frames at a device queue: {len(drops)}; "
              f"wedged connections: {len(wedged)}")
        for c in wedged:
            print(f"  wedged: {label(c)}")
    print()
    print("| cell (N = 8, no loss, 16 KiB) | ferronet | embassy-net |")
    print("|---|--:|--:|")
    for c in rows:
        if (c["queue"], c["loss"], c["buf"], c["rate"], c["rtt_us"]) == (8, 0, 16384, 100_000_000, 200):
            f = " / ".join(f"{g * 100:.1f}" for g in c["ferronet"]["goodput"])
            e = " / ".join(f"{g * 100:.1f}" for g in c["embassy"]["goodput"])
            print(f"| 100 Mbit/s, 0.2 ms, {c['workload']} | {f} | {e} |")

# --- chart --------------------------------------------------------------------------------
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("\nSKIP chart: matplotlib is not installed (pip install matplotlib)")
    sys.exit(0)

links = sorted({(c["rate"], c["rtt_us"]) for c in rows}, key=lambda x: (-x[0], x[1]))
losses = sorted({c["loss"] for c in rows})
bufs = sorted({c["buf"] for c in rows})
queue = 8 if any(c["queue"] == 8 for c in rows) else rows[0]["queue"]
series = [  # (stack, workload, colour, hatch)
    ("ferronet", "download", "#2e7d32", None),
    ("embassy", "download", "#9e9e9e", None),
    ("ferronet", "both", "#81c784", "//"),
    ("embassy", "both", "#d0d0d0", "//"),
]
series = [s for s in series if s[0] in stacks]
fig, axes = plt.subplots(len(losses), len(links), figsize=(3.3 * len(links), 3.0 * len(losses) + 0.6),
                         dpi=110, squeeze=False, sharey=True)
width = 0.8 / len(series)
for i, loss in enumerate(losses):
    for j, (rate, rtt) in enumerate(links):
        ax = axes[i][j]
        cells = {(c["workload"], c["buf"]): c for c in rows
                 if (c["rate"], c["rtt_us"], c["loss"], c["queue"]) == (rate, rtt, loss, queue)}
        for k, (stack, wl, colour, hatch) in enumerate(series):
            xs, ys = [], []
            for b_i, b in enumerate(bufs):
                c = cells.get((wl, b))
                if c is not None:
                    xs.append(b_i + (k - (len(series) - 1) / 2) * width)
                    ys.append(worst(c, stack) * 100)
            name = f"{'embassy-net' if stack == 'embassy' else stack}, {wl if wl == 'download' else 'both (weaker)'}"
            ax.bar(xs, ys, width, color=colour, hatch=hatch, edgecolor="#555555", linewidth=0.4,
                   label=name if (i, j) == (0, 0) else None)
        for b_i, b in enumerate(bufs):
            c = cells.get(("download", b))
            if c is not None:
                ax.plot([b_i - 0.42, b_i + 0.42], [c["bound"] * 100] * 2, color="black", linewidth=1.2,
                        label="bound" if (i, j, b_i) == (0, 0, 0) else None)
        ax.set_xticks(range(len(bufs)), [f"{b // 1024}K" for b in bufs])
        ax.set_ylim(0, 100)
        ax.set_title(f"{rate // 1_000_000} Mbit/s, RTT {rtt / 1000:g} ms, loss {loss * 100:g} %", fontsize=9)
        if j == 0:
            ax.set_ylabel("goodput, % of link rate")
        if i == len(losses) - 1:
            ax.set_xlabel("socket buffers")
fig.suptitle(f"TCP goodput on a simulated link, device queue N = {queue}, virtual clock "
             f"(ferronet vs embassy-net 0.9)", fontsize=10)
fig.legend(loc="lower center", ncol=len(series) + 1, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0.05, 1, 0.96))
out = root / "docs" / "goodput.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out)
print(f"\nwrote {out.relative_to(root)}")
