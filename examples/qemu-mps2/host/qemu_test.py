#!/usr/bin/env python3
"""Host side of the firmware tests: boots the qemu-mps2 firmware in QEMU and checks it.

Standard library only. Each scenario boots a fresh QEMU and ends with the firmware's own
verdict (QEMU's exit status through semihosting) on top of the checks made here:

  dhcp      the DHCP lease from QEMU's user-mode network (restrict=on)
  echo      TCP echo of 4 MiB each way, every byte checked
  http      200 status-page requests, 8 at a time, each response checked
  link      link down and up through QEMU's monitor (set_link) with an open TCP connection:
            the driver reports both, the connection carries on, the runner does not spin
  reboot    20 boots in a row (the firmware resets the board), each reaching DHCP
  tap       over a TAP device in a network namespace with dnsmasq (needs root): DHCP, DNS
            lookup, HTTP fetch and ping from the firmware, UDP echo and ping to it

Every wait is bounded; QEMU is killed on any exit. Usage:
  qemu_test.py --elf FIRMWARE [--runs N] [SCENARIO ...]
"""

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024
ROOT_SKIP = "SKIP"


class Failure(Exception):
    """A check failed."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child before exec: be killed when this script dies, however it dies (Linux
    prctl PR_SET_PDEATHSIG; kept across the exec of `ip netns exec` and of QEMU)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass  # not Linux: the finally blocks still kill QEMU on every ordinary exit


class Qemu:
    """One QEMU process running the firmware; its semihosting output collected line by line."""

    def __init__(self, elf, netdev, args=(), prefix=(), tmp="/tmp", extra=()):
        self.monitor_path = os.path.join(tmp, "monitor-%d-%d.sock" % (os.getpid(), id(self)))
        cmd = list(prefix) + [
            "qemu-system-arm", "-M", "mps2-an385", "-cpu", "cortex-m3", "-nographic",
            "-serial", "none", "-monitor", "unix:%s,server=on,wait=off" % self.monitor_path,
            "-semihosting-config",
            "enable=on,target=native" + "".join(",arg=" + a for a in ["fw"] + list(args)),
            "-netdev", netdev, "-net", "nic,netdev=n0,model=lan9118", "-kernel", elf] + list(extra) + (["-object", "filter-dump,id=f,netdev=n0,file=" + os.environ["PCAP"]] if os.environ.get("PCAP") else []) + [
        ]
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pattern, timeout, start=0):
        """The first match of `pattern` in the output at or after line `start`, with its index."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m, i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise Failure("no %r in the firmware's output within %ss; last lines: %s"
                                  % (pattern, timeout, self.lines[-5:]))
                self.cond.wait(min(left, 0.5))

    def monitor(self, command):
        """Run one human-monitor command."""
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(self.monitor_path)
                break
            except OSError:
                s.close()
                check(time.monotonic() < deadline, "QEMU's monitor socket did not open")
                time.sleep(0.05)
        with s:
            # The banner ends with the first prompt; the command's output ends with the next
            # one, after the line feed that ends the echoed command.
            banner = b""
            while b"(qemu) " not in banner:
                chunk = s.recv(4096)
                check(chunk, "QEMU's monitor closed before its prompt")
                banner += chunk
            s.sendall(command.encode() + b"\n")
            out = b""
            while b"\n" not in out or not out.rstrip(b" ").endswith(b"(qemu)"):
                chunk = s.recv(4096)
                check(chunk, "QEMU's monitor closed during %r" % command)
                out += chunk
        return out.decode("utf-8", "replace")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("QEMU did not exit within %ss" % timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.reader.join(5)
        if os.path.exists(self.monitor_path):
            os.unlink(self.monitor_path)


def connect(port, timeout=30):
    """Connect to a forwarded port (QEMU accepts at once; the guest may still refuse)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def control(port, command, timeout=30):
    """One command on the firmware's control port; its answer line.

    The firmware serves one control connection at a time and has no listen backlog: a connect
    that comes while it is still closing the previous one is reset, and is tried again."""
    for attempt in range(10):
        data = b""
        try:
            with connect(port, timeout) as s:
                s.sendall(command.encode() + b"\n")
                while not data.endswith(b"\n"):
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    data += chunk
        except ConnectionResetError:
            pass
        if data.endswith(b"\n"):
            return data.decode("utf-8", "replace").strip()
        time.sleep(0.05 * (attempt + 1))
    raise Failure("no answer to %r on the control port" % command)


def user_net(ports):
    """User-mode network, restrict=on (nothing leaves QEMU), with host forwards."""
    fwd = "".join(",hostfwd=tcp:127.0.0.1:%d-:%d" % (host, guest) for guest, host in ports.items())
    return "user,id=n0,restrict=on" + fwd


def boot_user(elf, tmp, args=(), extra=()):
    ports = {80: free_port(), 7: free_port(), 23: free_port()}
    q = Qemu(elf, user_net(ports), args, tmp=tmp, extra=extra)
    try:
        m, _ = q.wait_for(r"lease: address=(\S+) gateway=(\S+) dns=(\S+)", 30)
    except BaseException:
        q.kill()
        raise
    return q, ports, m


def finish(q, ctl_port):
    """Ask the firmware to exit and check its verdict."""
    check(control(ctl_port, "exit 0") == "ok", "control exit not acknowledged")
    code = q.wait_exit(30)
    q.wait_for(r"stack peak: \d+ bytes", 5)
    check(code == 0, "QEMU exit status %s" % code)


def echo_bytes(sock, payload, chunk=16384):
    """Send payload and read the same number of bytes back concurrently; return what came back."""
    received = bytearray()
    errors = []

    def writer():
        try:
            view = memoryview(payload)
            for i in range(0, len(view), chunk):
                sock.sendall(view[i:i + chunk])
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while len(received) < len(payload):
        data = sock.recv(65536)
        if not data:
            break
        received += data
    t.join(60)
    check(not errors, "send failed: %s" % errors)
    return bytes(received)


# --- scenarios ----------------------------------------------------------------------------


def s_dhcp(elf, tmp, rng):
    q, ports, m = boot_user(elf, tmp)
    try:
        check(m.group(1) == "10.0.2.15/24", "lease address %s" % m.group(1))
        finish(q, ports[23])
        return "lease %s" % m.group(1)
    finally:
        q.kill()


def s_echo(elf, tmp, rng):
    q, ports, _ = boot_user(elf, tmp)
    try:
        payload = rng.randbytes(4 * MIB)
        t0 = time.monotonic()
        with connect(ports[7], 120) as s:
            back = echo_bytes(s, payload)
        secs = time.monotonic() - t0
        check(len(back) == len(payload), "echo returned %d of %d bytes" % (len(back), len(payload)))
        check(back == payload, "echoed bytes differ from the sent ones")
        finish(q, ports[23])
        return "4 MiB each way checked (%.1f s)" % secs
    finally:
        q.kill()


def http_get(port, path, timeout=30):
    with connect(port, timeout) as s:
        s.sendall(b"GET %s HTTP/1.0\r\nHost: fw\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def check_status_page(data, path):
    head, sep, body = data.partition(b"\r\n\r\n")
    check(sep, "no end of header in %r" % data[:80])
    lines = head.split(b"\r\n")
    check(lines[0] == b"HTTP/1.0 200 OK", "status line %r" % lines[0])
    length = [int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length:")]
    check(length == [len(body)], "Content-Length %s, body %d bytes" % (length, len(body)))
    text = body.decode()
    check(text.startswith("ferronet on QEMU mps2-an385"), "page title")
    check("path: %s\n" % path in text, "page does not echo path %s" % path)
    for field in ("uptime_ms", "lease", "link", "http_requests", "stack_polls", "driver"):
        check("\n%s: " % field in text, "page lacks %s" % field)
    return text


def s_http(elf, tmp, rng):
    q, ports, _ = boot_user(elf, tmp)
    try:
        total, parallel = 200, 8
        done, errors, retries = [], [], [0]
        lock = threading.Lock()

        def worker(k):
            for i in range(k, total, parallel):
                path = "/req/%d/%08x" % (i, rng.getrandbits(32))
                for attempt in range(5):
                    try:
                        data = http_get(ports[80], path)
                        if data:
                            break
                    except (ConnectionResetError, socket.timeout) as e:
                        data = b""
                    # No listen backlog: every listener may be busy closing; try again.
                    with lock:
                        retries[0] += 1
                    time.sleep(0.05 * (attempt + 1))
                try:
                    check_status_page(data, path)
                    with lock:
                        done.append(i)
                except Failure as e:
                    with lock:
                        errors.append("request %d: %s" % (i, e))
                    return

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        check(not errors, "; ".join(errors[:3]))
        check(sorted(done) == list(range(total)), "%d of %d requests answered" % (len(done), total))
        page = check_status_page(http_get(ports[80], "/last"), "/last")
        served = int(re.search(r"http_requests: (\d+)", page).group(1))
        check(served == total + 1, "the firmware counted %d requests, not %d" % (served, total + 1))
        finish(q, ports[23])
        return "%d requests, %d at a time, all checked (%d retries)" % (total, parallel, retries[0])
    finally:
        q.kill()


def s_link(elf, tmp, rng):
    q, ports, _ = boot_user(elf, tmp)
    try:
        with connect(ports[7], 60) as s:
            first = rng.randbytes(64 * 1024)
            check(echo_bytes(s, first) == first, "echo before the link went down")
            _, start = q.wait_for(r"link: up", 5)
            q.monitor("set_link n0 off")
            m_down, i = q.wait_for(r"link: down at_ms=(\d+) polls=(\d+)", 10, start + 1)
            # Hold the link down for a while: a runner that spins would poll thousands of times.
            time.sleep(2)
            q.monitor("set_link n0 on")
            m_up, i = q.wait_for(r"link: up at_ms=(\d+) polls=(\d+)", 10, i + 1)
            q.wait_for(r"lease: address=10\.0\.2\.15/24", 30, i + 1)
            down_ms = int(m_up.group(1)) - int(m_down.group(1))
            polls = int(m_up.group(2)) - int(m_down.group(2))
            check(down_ms >= 1000, "link down for only %d ms" % down_ms)
            check(polls < 200, "the runner polled %d times while the link was down" % polls)
            # The lease outlives a short link-down (and is confirmed by DHCP after link-up),
            # so the open connection carries on.
            second = rng.randbytes(16 * 1024)
            check(echo_bytes(s, second) == second, "echo on the open connection after link up")
        fate = "the open connection survived"
        with connect(ports[7], 60) as s:
            third = rng.randbytes(256 * 1024)
            check(echo_bytes(s, third) == third, "echo on a new connection after link up")
        check("link: up" in check_status_page(http_get(ports[80], "/after-link"), "/after-link"),
              "status page after link up")
        finish(q, ports[23])
        return "down %d ms, %d polls meanwhile; %s; a new connection echoed 256 KiB" % (
            down_ms, polls, fate)
    finally:
        q.kill()


def s_reboot(elf, tmp, rng):
    q = Qemu(elf, user_net({}), ["reboot=20", "exit=1"], tmp=tmp)
    try:
        code = q.wait_exit(120)
        leases = [l for l in q.lines
                  if re.match(r"reboot: boot \d+ of 20 has lease 10\.0\.2\.15/24$", l)]
        boots = [l for l in q.lines if l.startswith("ferronet-qemu-mps2: boot ")]
        check(len(boots) == 20, "%d boots" % len(boots))
        check(len(leases) == 20, "%d leases in 20 boots: %s" % (
            len(leases), [l for l in q.lines if l.startswith("reboot:") and l not in leases]))
        check(any("reboot: all 20 boots reached DHCP" in l for l in q.lines), "no final reboot line")
        check(code == 0, "QEMU exit status %s" % code)
        return "20 boots, 20 leases"
    finally:
        q.kill()


# --- TAP in a network namespace -------------------------------------------------------------


def sh(*cmd, timeout=30, check_rc=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise Failure("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stdout.decode()[-300:]))
    return r.stdout.decode()


def tap_available():
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "dnsmasq", "ping"):
        if shutil.which(tool) is None:
            return "%s missing" % tool
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing"
    return None


NS_INNER = r"""
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    for i in range(20):
        msg = b"udp echo %d " % i + bytes(range(256)) * (1 + i % 4)
        for attempt in range(3):
            s.sendto(msg, (addr, 7))
            try:
                data, peer = s.recvfrom(4096)
            except socket.timeout:
                continue
            if data == msg and peer[0] == addr:
                ok += 1
                break
    print("udp %d/20" % ok)
elif kind == "ctl":
    s = socket.create_connection((addr, 23), timeout=20)
    s.sendall(sys.argv[3].encode() + b"\n")
    print(s.recv(1024).decode().strip())
"""


def s_tap(elf, tmp, rng):
    why = tap_available()
    if why:
        return ROOT_SKIP + " (" + why + ")"
    # Namespaces left by an earlier run that was killed outright (its process is gone).
    for name in sh("ip", "netns", "list").split():
        if re.fullmatch(r"fnqemu-\d+", name) and not os.path.exists("/proc/" + name[7:]):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    ns = "fnqemu-%d" % os.getpid()
    procs = []
    q = None
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "tap0")
        sh("ip", "-n", ns, "link", "set", "tap0", "up")
        www = os.path.join(tmp, "www")
        os.makedirs(www, exist_ok=True)
        body = "hello from the namespace %08x\n" % rng.getrandbits(32)
        with open(os.path.join(www, "hello.txt"), "w") as f:
            f.write(body)
        nsx = ["ip", "netns", "exec", ns]
        procs.append(subprocess.Popen(
            nsx + ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--interface=tap0",
                   "--bind-interfaces", "--dhcp-range=192.0.2.50,192.0.2.99,255.255.255.0,10m",
                   "--dhcp-leasefile=" + os.path.join(tmp, "leases"),
                   "--host-record=peer.ferronet.test,192.0.2.1", "--local=/ferronet.test/",
                   "--no-resolv", "--no-hosts", "--user=root",
                   "--pid-file=" + os.path.join(tmp, "dnsmasq.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            nsx + [sys.executable, "-m", "http.server", "--bind", "192.0.2.1", "--directory", www,
                   "8080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # Listeners first (a connect to a port nobody listens on yet is refused at once).
        deadline = time.monotonic() + 15
        while not all(x in sh(*nsx, "ss", "-Hln") for x in (":67 ", ":53 ", ":8080 ")):
            check(time.monotonic() < deadline, "dnsmasq or the HTTP server did not start")
            time.sleep(0.1)
        q = Qemu(elf, "tap,id=n0,ifname=tap0,script=no,downscript=no",
                 ["dns=peer.ferronet.test", "get=peer.ferronet.test:8080/hello.txt",
                  "ping=192.0.2.1"], prefix=nsx, tmp=tmp)
        m, _ = q.wait_for(r"lease: address=(192\.0\.2\.\d+)/24 gateway=\S+ dns=192\.0\.2\.1", 30)
        addr = m.group(1)
        q.wait_for(r"dns: peer\.ferronet\.test -> 192\.0\.2\.1$", 30)
        g, _ = q.wait_for(r"get: peer\.ferronet\.test:8080/hello\.txt -> status=200 "
                          r"body_len=(\d+) .*body=\"(.*)\"$", 30)
        check(g.group(2) == body.replace("\n", "\\n"), "fetched body %r" % g.group(2))
        q.wait_for(r"ping: 192\.0\.2\.1 -> 3 replies", 30)
        q.wait_for(r"commands: all passed", 10)
        inner = os.path.join(tmp, "inner.py")
        with open(inner, "w") as f:
            f.write(NS_INNER)
        udp = sh(*nsx, sys.executable, inner, "udp", addr, timeout=120).strip()
        check(udp == "udp 20/20", "UDP echo: %s" % udp)
        sh(*nsx, "ping", "-c", "3", "-W", "2", addr, timeout=30)
        check(sh(*nsx, sys.executable, inner, "ctl", addr, "exit 0").strip() == "ok", "exit")
        code = q.wait_exit(30)
        check(code == 0, "QEMU exit status %s" % code)
        return "lease %s; dns, get, ping from the firmware; udp echo 20/20; ping to it" % addr
    finally:
        if q:
            q.kill()
        for p in procs:
            p.kill()
            p.wait(10)
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


SCENARIOS = {"dhcp": s_dhcp, "echo": s_echo, "http": s_http, "link": s_link,
             "reboot": s_reboot, "tap": s_tap}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elf", required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    a = ap.parse_args()
    ci = os.environ.get("CI") == "true"
    passed = failed = skipped = 0
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    print("seed %d" % seed, flush=True)
    rng = random.Random(seed)
    for name in a.scenarios:
        if name not in SCENARIOS:
            sys.exit("unknown scenario %s (have: %s)" % (name, " ".join(SCENARIOS)))
        for run in range(1, a.runs + 1):
            tmp = tempfile.mkdtemp(prefix="qemu-test-")
            t0 = time.monotonic()
            try:
                what = SCENARIOS[name](a.elf, tmp, rng)
                if what.startswith(ROOT_SKIP):
                    if ci:
                        print("FAIL %s: %s (CI=true)" % (name, what), flush=True)
                        failed += 1
                    else:
                        print("*** SKIP %s: %s ***" % (name, what), flush=True)
                        skipped += 1
                    break
                print("PASS %s run %d/%d (%.1f s): %s"
                      % (name, run, a.runs, time.monotonic() - t0, what), flush=True)
                passed += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
                print("FAIL %s run %d/%d: %s: %s" % (name, run, a.runs, type(e).__name__, e),
                      flush=True)
                failed += 1
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
