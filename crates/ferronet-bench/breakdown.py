#!/usr/bin/env python3
"""Where the instructions go: self cost per unit, grouped by the source file they come from.

Reads the callgrind.out files that callgrind.sh leaves (two sizes per workload and stack) and
prints, per workload and stack, (Ir(S2) - Ir(S1)) / (S2 - S1) of the *self* cost of the
instructions whose source file belongs to each group:

  smoltcp   smoltcp's own source
  core      Rust core/alloc/std code inlined into any crate (slice loops, iterators, ...)
  libc      memcpy/memmove/memcmp and the like
  bench     the benchmark itself: application tasks, link, executor, pattern check
  stack     the stack crate's own source: crates/ferronet, or embassy-net + embassy-time

Code is charged to the file its instructions come from (DWARF line info), so a helper that
ferronet inlines from core counts as core. Usage:

    crates/ferronet-bench/breakdown.py [DIR]    (default target/ferronet-bench-callgrind)
"""

import os
import re
import sys

SIZES = {
    "tcp_bulk_16k": (524288, 4194304, "Ir/byte"),
    "tcp_bulk_64k": (524288, 4194304, "Ir/byte"),
    "tcp_rr": (250, 2000, "Ir/RT"),
    "udp_rr": (250, 2000, "Ir/RT"),
    "tcp_churn": (25, 200, "Ir/conn"),
}
GROUPS = ["smoltcp", "core", "libc", "bench", "stack", "other"]


def group_of(path):
    if "/smoltcp-" in path:
        return "smoltcp"
    if "crates/ferronet-bench/" in path:
        return "bench"
    if "crates/ferronet/" in path or "/embassy-net-0." in path or "/embassy-time-0." in path:
        return "stack"
    if "library/core" in path or "library/alloc" in path or "library/std" in path:
        return "core"
    if "sysdeps" in path or "string/" in path or path.endswith(".S"):
        return "libc"
    return "other"


def self_cost_by_group(path):
    """Sum the self cost (first event, Ir) of every cost line, by the group of its file."""
    names = {}
    totals = dict.fromkeys(GROUPS, 0)
    cur_file = "???"
    skip_next = False
    name_re = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(spec):
        m = name_re.match(spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
            return m.group(2)
        return names.get(m.group(1), "???")

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith(("fl=", "fi=", "fe=")):
                cur_file = resolve(line[3:])
                continue
            if line.startswith(("cfl=", "cfi=")):
                resolve(line[4:])
                continue
            if line.startswith("calls="):
                skip_next = True  # the next cost line is the call's inclusive cost
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    totals[group_of(cur_file)] += int(parts[1])
    return totals


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "target/ferronet-bench-callgrind"
    print("| workload | stack | smoltcp | core (inlined) | libc | bench | the stack's crate | total |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for w, (s1, s2, unit) in SIZES.items():
        for stack in ("ferronet", "embassy"):
            f1 = os.path.join(out, f"callgrind.out.{w}.{stack}.{s1}")
            f2 = os.path.join(out, f"callgrind.out.{w}.{stack}.{s2}")
            if not (os.path.exists(f1) and os.path.exists(f2)):
                continue
            a, b = self_cost_by_group(f1), self_cost_by_group(f2)
            per = {g: (b[g] - a[g]) / (s2 - s1) for g in GROUPS}
            fmt = "{:.2f}" if unit == "Ir/byte" else "{:.0f}"
            cells = [fmt.format(per[g]) for g in ("smoltcp", "core", "libc", "bench", "stack")]
            total = fmt.format(sum(per.values()))
            name = "ferronet" if stack == "ferronet" else "embassy-net"
            print(f"| {w}, {unit} | {name} | " + " | ".join(cells) + f" | {total} |")


if __name__ == "__main__":
    main()
