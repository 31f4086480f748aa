#!/usr/bin/env python3
"""The demo: the ferronet firmware in QEMU, seen from the host (standard library only).

Boots the firmware with QEMU's user-mode network (restrict=on: nothing leaves QEMU; the
firmware's ports are forwarded to 127.0.0.1), prints the DHCP lease, fetches the status page,
echoes 1 MiB over TCP with every byte checked, then asks the firmware to exit and shows its
verdict. QEMU is killed on any exit. Exit status 0 when everything worked.
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_test as qt  # noqa: E402 - the shared QEMU helpers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elf", required=True)
    a = ap.parse_args()
    # TERM or HUP (timeout, a closed terminal) end the demo through the finally below, as
    # Ctrl-C does; should this script be killed outright, QEMU dies with it (die_with_parent).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    tmp = tempfile.mkdtemp(prefix="ferronet-demo-")
    q = None
    try:
        print("== booting the firmware: qemu-system-arm -M mps2-an385 (Cortex-M3 + LAN9118)")
        q, ports, m = qt.boot_user(a.elf, tmp)
        print("firmware: " + q.lines[0])
        print("DHCP lease from QEMU: address %s, gateway %s, DNS %s"
              % (m.group(1), m.group(2), m.group(3)))
        print("   (QEMU's restrict=on network hands out no router and no DNS server)")

        print("\n== GET http://127.0.0.1:%d/ (forwarded to the firmware's port 80)" % ports[80])
        page = qt.http_get(ports[80], "/")
        head, _, body = page.partition(b"\r\n\r\n")
        qt.check_status_page(page, "/")
        print(head.split(b"\r\n")[0].decode())
        print(body.decode().rstrip())

        print("\n== TCP echo: 1 MiB to the firmware's port 7 and back")
        payload = random.Random(7).randbytes(1024 * 1024)
        t0 = time.monotonic()
        with qt.connect(ports[7], 60) as s:
            back = qt.echo_bytes(s, payload)
        secs = time.monotonic() - t0
        qt.check(back == payload, "the echoed bytes differ (%d of %d came back)"
                 % (len(back), len(payload)))
        print("1048576 bytes sent, 1048576 bytes received, every byte checked (%.2f s wall"
              " clock through QEMU's user-mode network)" % secs)

        print("\n== control port: stats, then exit")
        print("stats -> " + qt.control(ports[23], "stats"))
        qt.finish(q, ports[23])
        for line in q.lines:
            if line.startswith(("stack peak", "exit:")):
                print("firmware: " + line)
        print("\nQEMU exited with status 0: demo passed")
        return 0
    except qt.Failure as e:
        print("\ndemo FAILED: %s" % e, file=sys.stderr)
        if q:
            print("last firmware lines:\n  " + "\n  ".join(q.lines[-8:]), file=sys.stderr)
        return 1
    finally:
        if q:
            q.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
