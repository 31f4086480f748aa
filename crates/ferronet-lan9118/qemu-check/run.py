#!/usr/bin/env python3
"""Boots the qemu-check firmware and plays the host side: when the firmware prints
"LINK: down" / "LINK: up", pulls or plugs QEMU's virtual cable through the QEMU monitor.
Prints the firmware's output and exits with QEMU's exit status. Bounded: 60 s at most."""

import os
import socket
import subprocess
import sys
import tempfile
import threading

LIMIT_S = 60


def until_prompt(s: socket.socket) -> None:
    """Reads the monitor's output up to its next prompt (the socket's timeout bounds it)."""
    seen = b""
    while b"(qemu)" not in seen:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("QEMU monitor closed")
        seen = seen[-16:] + chunk


def monitor(path: str, command: str) -> None:
    """Runs one command in the QEMU monitor at the unix socket `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        until_prompt(s)
        s.sendall(command.encode() + b"\n")
        until_prompt(s)


def main() -> int:
    elf = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="lan9118-check-")
    mon = os.path.join(tmp, "monitor.sock")
    cmd = [
        "qemu-system-arm", "-M", "mps2-an385", "-cpu", "cortex-m3", "-nographic",
        "-serial", "none", "-monitor", f"unix:{mon},server,nowait",
        "-semihosting-config", "enable=on,target=native",
        # User-mode network, nothing leaves QEMU.
        "-netdev", "user,id=n0,restrict=on", "-net", "nic,netdev=n0,model=lan9118",
        "-kernel", elf,
    ]
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(LIMIT_S, qemu.kill)
    watchdog.start()
    try:
        assert qemu.stdout is not None
        for line in qemu.stdout:
            print(line, end="", flush=True)
            if line.startswith("LINK: down"):
                monitor(mon, "set_link n0 off")
            elif line.startswith("LINK: up"):
                monitor(mon, "set_link n0 on")
        code = qemu.wait()
    finally:
        watchdog.cancel()
        qemu.kill()
        try:
            os.unlink(mon)
        except FileNotFoundError:
            pass
        os.rmdir(tmp)
    if code < 0:
        print(f"qemu-check: QEMU killed after {LIMIT_S} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
