#!/usr/bin/env python3
"""Attribute the .text of firmware ELFs to crates and source files (stdlib only).

Usage: bloat.py FERRONET_ELF EMBASSY_ELF [--top N] [--summary]

Both ELFs must be built with debug info (cargo profile `bloat`, same code generation as
`release`). Two views, because with fat LTO almost everything is inlined:

1. Innermost source (DWARF line table, from `objdump --dwarf=decodedline`): every byte of
   .text is charged to the source file of its line-table row, i.e. to the code that was
   written there, wherever it was inlined. ferronet's own bytes are those whose row points
   into crates/ferronet/src; embassy-net's, into embassy-net-*/src.
2. Outermost function (symbol table, `nm -S`): every byte is charged to the function symbol
   that contains it (what cargo-bloat shows). With LTO these are few and large.

Prints markdown tables.
"""

import re
import subprocess
import sys
from collections import defaultdict

TEXT_LO_HI = {}


def text_range(elf):
    out = subprocess.run(["readelf", "-SW", elf], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            lo = int(m.group(1), 16)
            return lo, lo + int(m.group(2), 16)
    raise SystemExit(f"{elf}: no .text")


def crate_of(path):
    """Map a source path to a crate name (with version for registry crates)."""
    m = re.search(r"/registry/src/[^/]+/([^/]+)/", path)
    if m:
        return m.group(1)
    if "/ferronet-bench/firmware/" in path:
        return "firmware (this program)"
    m = re.search(r"/crates/(ferronet[^/]*)/src/", path)
    if m:
        return m.group(1)
    m = re.search(r"library/([^/]+)/", path)
    if m:
        return "std:" + m.group(1)
    if path.startswith("src/"):
        return "firmware (this program)"
    return "other: " + path


def short_path(path):
    m = re.search(r"/registry/src/[^/]+/(.+)$", path)
    if m:
        return m.group(1)
    m = re.search(r"/(crates/ferronet[^/]*/src/.+)$", path)
    if m:
        return m.group(1)
    m = re.search(r"(library/.+)$", path)
    if m:
        return m.group(1)
    return path


def dwarfdump():
    import shutil
    for name in ["llvm-dwarfdump"] + [f"llvm-dwarfdump-{v}" for v in range(30, 10, -1)]:
        if shutil.which(name):
            return name
    raise SystemExit("bloat.py needs llvm-dwarfdump (apt-get install llvm)")


def line_attribution(elf):
    lo, hi = text_range(elf)
    dd = dwarfdump()
    info = subprocess.run([dd, "--debug-info", elf], capture_output=True, text=True, check=True).stdout
    comp_dir = {}
    stmt = None
    for line in info.splitlines():
        m = re.search(r"DW_AT_stmt_list\s*\((0x[0-9a-f]+)\)", line)
        if m:
            stmt = int(m.group(1), 16)
        m = re.search(r'DW_AT_comp_dir\s*\("(.*)"\)', line)
        if m and stmt is not None:
            comp_dir[stmt] = m.group(1)
            stmt = None
    out = subprocess.run([dd, "--debug-line", elf], capture_output=True, text=True, check=True).stdout
    rows = []  # (addr, path, end_of_sequence)
    dirs, files, cdir, fname = {}, {}, "", None
    row_re = re.compile(r"^0x([0-9a-f]+)\s+\d+\s+\d+\s+(\d+)\s.*$")
    for line in out.splitlines():
        m = re.match(r"debug_line\[(0x[0-9a-f]+)\]", line)
        if m:
            cdir = comp_dir.get(int(m.group(1), 16), "")
            dirs, files = {0: cdir}, {}
            continue
        m = re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', line)
        if m:
            d = m.group(2)
            dirs[int(m.group(1))] = d if d.startswith("/") else cdir + "/" + d
            continue
        m = re.match(r"file_names\[\s*(\d+)\]:", line)
        if m:
            fname = int(m.group(1))
            continue
        m = re.match(r'\s+name: "(.*)"', line)
        if m and fname is not None:
            files[fname] = [m.group(1), 0]
            continue
        m = re.match(r"\s+dir_index: (\d+)", line)
        if m and fname is not None:
            files[fname][1] = int(m.group(1))
            continue
        m = row_re.match(line)
        if m:
            name, di = files.get(int(m.group(2)), ["?", 0])
            path = name if name.startswith("/") else dirs.get(di, cdir) + "/" + name
            rows.append((int(m.group(1), 16), path, "end_sequence" in line))
    # Rows come in sequences; the byte range of a row ends at the next row's address. A byte
    # covered by two sequences (it happens, rarely) is charged once, to the first.
    taken = bytearray(hi - lo)
    by_file = defaultdict(int)
    kept = []
    for (a, f, end), (b, _, _) in zip(rows, rows[1:]):
        if end or b <= a:
            continue
        a2, b2 = max(a, lo), min(b, hi)
        if b2 <= a2:
            continue
        seg = taken[a2 - lo : b2 - lo]
        n = len(seg) - sum(seg)
        if n == 0:
            continue
        taken[a2 - lo : b2 - lo] = b"\x01" * (b2 - a2)
        by_file[f] += n
        kept.append((a2, n))
    line_attribution.rows[elf] = kept
    return by_file, hi - lo


line_attribution.rows = {}

# Crates whose code is charged to the caller in the inclusive view: generic helpers that the
# stack crate instantiates/inlines (core, heapless, embassy-sync wakers, embassy-time maths).
HELPERS = ("std:", "heapless", "embassy-sync", "embassy-time-0", "managed", "byteorder")


def symbolizer():
    import shutil
    for name in ["llvm-symbolizer"] + [f"llvm-symbolizer-{v}" for v in range(30, 10, -1)]:
        if shutil.which(name):
            return name
    raise SystemExit("bloat.py needs llvm-symbolizer (apt-get install llvm)")


def inclusive_attribution(elf, stack_crate):
    """Charge each line-table row to the first frame of its inline chain (innermost outward)
    that is not in a helper crate; return ({crate: bytes}, {stack function: bytes},
    {stack file:line: bytes})."""
    rows = line_attribution.rows[elf]
    inp = "".join(f"0x{a:x}\n" for a, _ in rows)
    out = subprocess.run(
        [symbolizer(), f"--obj={elf}", "--inlining", "--functions=linkage", "--demangle"],
        input=inp, capture_output=True, text=True, check=True,
    ).stdout
    chains = out.strip("\n").split("\n\n")
    crates, funcs, lines = defaultdict(int), defaultdict(int), defaultdict(int)
    for (a, n), ch in zip(rows, chains):
        ls = ch.split("\n")
        frames = [(ls[i], ls[i + 1]) for i in range(0, len(ls) - 1, 2)]
        chosen = None
        for fn, loc in frames:
            c = crate_of(loc)
            if not c.startswith(HELPERS):
                chosen = (fn, loc, c)
                break
        if chosen is None:
            crates["(helpers only)"] += n
            continue
        fn, loc, c = chosen
        crates[c] += n
        if c.startswith(stack_crate):
            funcs[pretty(fn)] += n
            lines[short_path(loc.rsplit(":", 1)[0])] += n
    return crates, funcs, lines


LEGACY = [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$u7b$", "{"), ("$u7d$", "}"),
          ("$C$", ","), ("$RF$", "&"), ("$BP$", "*"), ("$u27$", "'"), ("$u5b$", "["),
          ("$u5d$", "]"), ("$u7e$", "~"), ("$SP$", "@"), ("$LP$", "("), ("$RP$", ")"), ("..", "::")]


def pretty(name):
    """Finish demangling legacy Rust symbols that old LLVM demanglers leave escaped."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    if "$" in name or ".." in name:
        name = re.sub(r"(^|::)_(\$)", r"\1\2", name)
        for a, b in LEGACY:
            name = name.replace(a, b)
    return name


def symbols(elf):
    out = subprocess.run(
        ["nm", "-S", "--size-sort", "-C", "--radix=d", elf], capture_output=True, text=True, check=True
    ).stdout
    res = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            res.append((int(parts[1]), parts[3]))
    return res


def main():
    args = sys.argv[1:]
    top = 25
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i : i + 2]
    summary = "--summary" in args
    if summary:
        args.remove("--summary")
    fer, emb = args
    lf, tf = line_attribution(fer)
    le, te = line_attribution(emb)

    def by_crate(by_file):
        d = defaultdict(int)
        for f, n in by_file.items():
            d[crate_of(f or "?")] += n
        return d

    cf, ce = by_crate(lf), by_crate(le)
    print("### .text by crate (innermost source, DWARF line table)\n")
    print("| crate | ferronet build | embassy-net build | difference |")
    print("|---|---:|---:|---:|")

    def key(c):
        return c.split("-")[0] if re.match(r".*-\d+\.\d+\.\d+$", c) else c

    # Pair crates by name without version, so smoltcp-0.14 lines up with smoltcp-0.13.
    names = defaultdict(lambda: [None, None])
    for c in cf:
        names[re.sub(r"-\d+\.\d+\.\d+$", "", c)][0] = c
    for c in ce:
        names[re.sub(r"-\d+\.\d+\.\d+$", "", c)][1] = c
    # ferronet vs embassy-net are "the stack".
    names["STACK: ferronet / embassy-net"] = [
        names.pop("ferronet", [None, None])[0],
        names.pop("embassy-net", [None, None])[1],
    ]
    rows = []
    for n, (a, b) in names.items():
        va, vb = cf.get(a, 0) if a else 0, ce.get(b, 0) if b else 0
        label = n if a == b or not (a and b) else f"{n} ({a} / {b})"
        if n.startswith("STACK"):
            label = n
        rows.append((max(va, vb), label, va, vb))
    rows.sort(reverse=True)
    for _, label, va, vb in rows:
        if va or vb:
            print(f"| {label} | {va} | {vb} | {va - vb:+d} |")
    sf, se = sum(lf.values()), sum(le.values())
    print(f"| (no line info: hand-written asm, padding) | {tf - sf} | {te - se} | {(tf - sf) - (te - se):+d} |")
    print(f"| **total .text** | **{tf}** | **{te}** | **{tf - te:+d}** |")

    if summary:
        inclusive_report(fer, emb, top, summary=True)
        return

    print("\n### The stack crate's own code by source file (innermost source)\n")
    print("| ferronet file | bytes | | embassy-net file | bytes |")
    print("|---|---:|---|---|---:|")
    ff = sorted(((n, short_path(f)) for f, n in lf.items() if crate_of(f or "?") == "ferronet"), reverse=True)
    ef = sorted(((n, short_path(f)) for f, n in le.items() if crate_of(f or "?").startswith("embassy-net-0")), reverse=True)
    for i in range(max(len(ff), len(ef))):
        a = ff[i] if i < len(ff) else (None, "")
        b = ef[i] if i < len(ef) else (None, "")
        print(f"| {a[1]} | {'' if a[0] is None else a[0]} | | {b[1]} | {'' if b[0] is None else b[0]} |")

    print(f"\n### Largest functions (outermost symbol, nm -S), top {top}\n")
    sf_, se_ = symbols(fer), symbols(emb)
    print("| ferronet build | bytes | | embassy-net build | bytes |")
    print("|---|---:|---|---|---:|")
    a, b = sf_[::-1][:top], se_[::-1][:top]
    for i in range(top):
        x = a[i] if i < len(a) else (None, "")
        y = b[i] if i < len(b) else (None, "")
        nx = x[1].replace("|", "\\|")[:90]
        ny = y[1].replace("|", "\\|")[:90]
        print(f"| `{nx}` | {'' if x[0] is None else x[0]} | | `{ny}` | {'' if y[0] is None else y[0]} |")

    print("\n### Functions of the stack crate itself (outermost symbol)\n")
    fs = [(n, s) for n, s in sf_ if s.startswith("ferronet::") or s.startswith("<ferronet::")]
    es = [(n, s) for n, s in se_ if s.startswith("embassy_net::") or s.startswith("<embassy_net::")]
    print(f"ferronet: {len(fs)} symbols, {sum(n for n, _ in fs)} bytes; "
          f"embassy-net: {len(es)} symbols, {sum(n for n, _ in es)} bytes\n")
    print("| ferronet symbol | bytes | | embassy-net symbol | bytes |")
    print("|---|---:|---|---|---:|")
    fs, es = fs[::-1], es[::-1]
    for i in range(max(len(fs), len(es))):
        x = fs[i] if i < len(fs) else (None, "")
        y = es[i] if i < len(es) else (None, "")
        nx = x[1].replace("|", "\\|")[:90]
        ny = y[1].replace("|", "\\|")[:90]
        print(f"| {'`'+nx+'`' if nx else ''} | {'' if x[0] is None else x[0]} | | {'`'+ny+'`' if ny else ''} | {'' if y[0] is None else y[0]} |")

    inclusive_report(fer, emb, top)


def inclusive_report(fer, emb, top, summary=False):
    cf, ff, lf = inclusive_attribution(fer, "ferronet")
    ce, fe, le = inclusive_attribution(emb, "embassy-net-0")
    print("\n### .text by crate, helpers charged to their caller (inline chains)\n")
    print("Each byte is charged to the innermost frame of its inline chain that is not in core,")
    print("heapless, embassy-sync, embassy-time, managed or byteorder: so `Option`/slice/`RefCell`")
    print("code that ferronet inlines counts as ferronet's, smoltcp code stays smoltcp's.\n")
    print("| crate | ferronet build | embassy-net build | difference |")
    print("|---|---:|---:|---:|")
    norm = lambda c: re.sub(r"-\d+\.\d+\.\d+$", "", c)
    a, b = defaultdict(int), defaultdict(int)
    for c, n in cf.items():
        a["STACK: ferronet / embassy-net" if c == "ferronet" else norm(c)] += n
    for c, n in ce.items():
        b["STACK: ferronet / embassy-net" if norm(c) == "embassy-net" else norm(c)] += n
    for k in sorted(set(a) | set(b), key=lambda k: -max(a[k], b[k])):
        print(f"| {k} | {a[k]} | {b[k]} | {a[k] - b[k]:+d} |")
    print(f"\n### The stack crate's functions, inclusive of inlined helpers, top {top}\n")
    print("| ferronet function | bytes | | embassy-net function | bytes |")
    print("|---|---:|---|---|---:|")
    x = sorted(((n, f) for f, n in ff.items()), reverse=True)[:top]
    y = sorted(((n, f) for f, n in fe.items()), reverse=True)[:top]
    for i in range(max(len(x), len(y))):
        p = x[i] if i < len(x) else (None, "")
        q = y[i] if i < len(y) else (None, "")
        ps = p[1].replace("|", "\\|")[:100]
        qs = q[1].replace("|", "\\|")[:100]
        print(f"| {'`'+ps+'`' if ps else ''} | {'' if p[0] is None else p[0]} | | {'`'+qs+'`' if qs else ''} | {'' if q[0] is None else q[0]} |")
    if summary:
        return
    print(f"\n### The stack crate's hottest source lines (inclusive), top {top}\n")
    print("| ferronet line | bytes | | embassy-net line | bytes |")
    print("|---|---:|---|---|---:|")
    x = sorted(((n, f) for f, n in lf.items()), reverse=True)[:top]
    y = sorted(((n, f) for f, n in le.items()), reverse=True)[:top]
    for i in range(max(len(x), len(y))):
        p = x[i] if i < len(x) else (None, "")
        q = y[i] if i < len(y) else (None, "")
        print(f"| {p[1]} | {'' if p[0] is None else p[0]} | | {q[1]} | {'' if q[0] is None else q[0]} |")


if __name__ == "__main__":
    main()
