#!/usr/bin/env python3
"""The loss cells of the goodput benchmark over several seeds.

With 1 % loss, the seed decides which frames are lost, and one run of a lossy cell can land
either stack on a lucky or an unlucky pattern (a loss that costs a retransmission timeout or
none): single runs of the same cell differ by tens of points. This script takes the JSON of
several `goodput --loss 1 --seed S` runs (`scripts/goodput.sh` makes them; the first file is
the full matrix of seed 1) and prints a markdown section: for each loss cell, each stack's
mean over the seeds of its weaker direction (`both`: the lower of upload and download, as in
the summary of the single run), how many cells ferronet is ahead of, level with and behind
embassy-net on those means, and the cells behind on the means or in the single run.

Usage: goodput_seeds.py SEED1.json SEED2.json ...
"""
import json
import sys


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return {key(c): c for c in rows if c["loss"] > 0}


def key(c):
    return (c["rate"], c["rtt_us"], c["loss"], c["queue"], c["workload"], c["buf"])


def weaker(c, stack):
    return min(x if x is not None else 0.0 for x in c[stack]["goodput"])


def label(k):
    rate, rtt, loss, queue, workload, buf = k
    return (f"{rate // 1_000_000} Mbit/s, {rtt / 1000:g} ms, N = {queue}, {workload}, "
            f"{buf // 1024} KiB")


runs = [load(p) for p in sys.argv[1:]]
first = runs[0]
cells = [k for k in first if all(k in r for r in runs)]
n = len(runs)

mean = {}
for k in cells:
    mean[k] = {s: sum(weaker(r[k], s) for r in runs) / n for s in ("ferronet", "embassy")}

ahead = [k for k in cells if mean[k]["ferronet"] > mean[k]["embassy"] + 0.005]
behind = [k for k in cells if mean[k]["ferronet"] < mean[k]["embassy"] - 0.005]
single_behind = [k for k in cells if weaker(first[k], "ferronet") < weaker(first[k], "embassy") - 0.005]
overall = {s: 100 * sum(mean[k][s] for k in cells) / len(cells) for s in ("ferronet", "embassy")}

print(f"Each of the {len(cells)} loss cells run with {n} seeds (1-{n}); per stack, the mean over "
      f"the seeds of its weaker direction, in % of the link rate.\n")
print(f"- ferronet ahead by more than 0.5 points in {len(ahead)} cells, within 0.5 points in "
      f"{len(cells) - len(ahead) - len(behind)}, behind in {len(behind)}.")
print(f"- Mean over the loss cells and seeds (weaker direction): ferronet "
      f"{overall['ferronet']:.1f} %, embassy-net {overall['embassy']:.1f} %.")
print("- Cells behind on the means, or in the single run of seed 1 (the full table):\n")
print("| cell | ferronet, mean | embassy-net, mean | ferronet, seeds min-max | "
      "embassy-net, seeds min-max | seed 1 |")
print("|---|--:|--:|--:|--:|--:|")
for k in cells:
    if k not in behind and k not in single_behind:
        continue
    rng = {s: [weaker(r[k], s) * 100 for r in runs] for s in ("ferronet", "embassy")}
    print(f"| {label(k)} | {mean[k]['ferronet'] * 100:.1f} | {mean[k]['embassy'] * 100:.1f} | "
          f"{min(rng['ferronet']):.1f}-{max(rng['ferronet']):.1f} | "
          f"{min(rng['embassy']):.1f}-{max(rng['embassy']):.1f} | "
          f"{weaker(first[k], 'ferronet') * 100:.1f} / {weaker(first[k], 'embassy') * 100:.1f} |")
