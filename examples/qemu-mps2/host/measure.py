#!/usr/bin/env python3
"""On-target figures: the qemu-mps2 firmware built on ferronet and on embassy-net 0.9.1.

For each build (same source, `use ferronet as net` / `use embassy_net as net`): `.text`,
`.rodata` and static RAM from the ELF (llvm-size or size), then a boot under QEMU with
`-icount shift=0`, where the virtual clock advances one nanosecond per guest instruction while
the CPU runs. The firmware counts the time it sleeps in WFI and reports busy time (elapsed minus
asleep) on its control port, so busy nanoseconds are guest instructions; a `spin N` command
(a loop of 2N instructions) checks that at the start of each run. Measured:

  - instructions per byte of a 1 MiB TCP echo (the firmware receives and sends each byte);
  - instructions per HTTP request (status page, one connection per request, sequential);
  - the peak stack (painted at boot, read at exit) after both workloads.

The control commands' own cost is measured (two `stats` back to back) and subtracted. The
user-mode network's timing does not enter the instruction counts. Standard library only.
Usage: measure.py --elf NAME=PATH [--elf NAME=PATH ...] [--runs N]
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_test as qt  # noqa: E402 - the shared QEMU helpers

ECHO_BYTES = 1024 * 1024
HTTP_REQUESTS = 100


def sections(elf):
    tool = shutil.which("llvm-size") or shutil.which("size")
    qt.check(tool, "needs llvm-size or binutils' size")
    out = subprocess.run([tool, "-A", elf], stdout=subprocess.PIPE, check=True).stdout.decode()
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    ram = sum(sizes.get(s, 0) for s in (".data", ".bss", ".uninit"))
    return sizes.get(".text", 0), sizes.get(".rodata", 0), ram


def busy(port):
    m = re.search(r"busy_ns=(\d+)", qt.control(port, "stats"))
    qt.check(m, "no busy_ns in stats")
    return int(m.group(1))


def measure(elf, tmp):
    q, ports, _ = qt.boot_user(elf, tmp, extra=["-icount", "shift=0"])
    try:
        ctl = ports[23]
        spin = int(re.search(r"busy_ns=(\d+)", qt.control(ctl, "spin 1000000")).group(1))
        qt.check(abs(spin - 2_000_000) < 2_000, "calibration: 2e6 instructions read %d ns" % spin)
        a = busy(ctl)
        b = busy(ctl)
        overhead = b - a  # one stats command, as seen between two readings

        payload = random.Random(1).randbytes(ECHO_BYTES)
        a = busy(ctl)
        with qt.connect(ports[7], 120) as s:
            back = qt.echo_bytes(s, payload)
        b = busy(ctl)
        qt.check(back == payload, "echo bytes differ")
        echo = (b - a - overhead) / ECHO_BYTES

        a = busy(ctl)
        for i in range(HTTP_REQUESTS):
            path = "/m/%d" % i
            data = b""
            for _attempt in range(5):
                try:
                    data = qt.http_get(ports[80], path)
                except ConnectionResetError:
                    data = b""
                if data:
                    break
            qt.check_status_page(data, path)
        b = busy(ctl)
        http = (b - a - overhead) / HTTP_REQUESTS

        qt.finish(q, ctl)
        m, _ = q.wait_for(r"stack peak: (\d+) bytes", 5)
        return echo, http, int(m.group(1))
    finally:
        q.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elf", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    rows = {}
    for spec in a.elf:
        name, path = spec.split("=", 1)
        text, rodata, ram = sections(path)
        runs = []
        for _ in range(a.runs):
            tmp = tempfile.mkdtemp(prefix="qemu-measure-")
            try:
                runs.append(measure(path, tmp))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        echo = min(r[0] for r in runs)
        http = min(r[1] for r in runs)
        stack = max(r[2] for r in runs)
        rows[name] = (text, rodata, ram, stack, echo, http)
        print("%s: %d runs, echo instr/byte %s, http instr/request %s, stack %s" % (
            name, a.runs, ["%.1f" % r[0] for r in runs], ["%.0f" % r[1] for r in runs],
            [r[2] for r in runs]), flush=True)
    names = list(rows)
    print()
    print("| | " + " | ".join(names) + (" | ratio %s/%s |" % (names[0], names[1])
                                         if len(names) == 2 else " |"))
    print("|---|" + "---:|" * (len(names) + (1 if len(names) == 2 else 0)))
    labels = [".text (bytes)", ".rodata (bytes)", "static RAM (bytes)", "peak stack (bytes)",
              "instructions per echoed byte (1 MiB TCP echo)",
              "instructions per HTTP request"]
    for i, label in enumerate(labels):
        vals = [rows[n][i] for n in names]
        cells = ["%.1f" % v if isinstance(v, float) and v < 100 else "%d" % round(v)
                 for v in vals]
        ratio = " | %.3f" % (vals[0] / vals[1]) if len(names) == 2 and vals[1] else ""
        print("| %s | %s%s |" % (label, " | ".join(cells), ratio))


if __name__ == "__main__":
    main()
