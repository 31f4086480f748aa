#!/usr/bin/env python3
"""Draw docs/bench-ratios.png: ferronet's cost as a fraction of embassy-net 0.9's.

Reads the figures from crates/ferronet-bench/ratios.json (copied from the latest
`./scripts/bench.sh` run: callgrind instructions per unit, firmware .text and static RAM) and
draws one bar per figure; below 1.0 means ferronet uses less. Needs matplotlib
(`pip install matplotlib`).
"""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).resolve().parent
root = here.parent.parent
data = json.loads((here / "ratios.json").read_text())

labels = [d["label"] for d in data["figures"]]
ratios = [d["ferronet"] / d["embassy"] for d in data["figures"]]
colors = ["#2e7d32" if r < 1.0 else "#c62828" for r in ratios]

fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
bars = ax.barh(labels, ratios, color=colors)
ax.axvline(1.0, color="black", linewidth=1)
ax.set_xlim(0, max(1.2, max(ratios) + 0.1))
ax.invert_yaxis()
ax.set_xlabel("ferronet / embassy-net 0.9   (< 1: ferronet uses less)")
ax.set_title(data["title"], fontsize=10)
for bar, r in zip(bars, ratios):
    ax.text(r + 0.01, bar.get_y() + bar.get_height() / 2, f"{r:.2f}", va="center", fontsize=9)
fig.tight_layout()
out = root / "docs" / "bench-ratios.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out)
print(f"wrote {out.relative_to(root)}")
