#!/usr/bin/env python3
"""Small Linux-side peers for scripts/interop.sh and scripts/throughput.sh.

Run inside a network namespace; every mode ends by itself (idle timeouts, counts), and the
scripts also run it under `timeout`. Servers print `listening` (flushed) once they accept.

  udp-echo PORT                         echo every datagram (IPv4 and IPv6) until killed
  udp-check HOST PORT COUNT SIZE [--dev IF]
                                        send COUNT datagrams of SIZE bytes, check every echo
                                        (--dev: send through interface IF, for multicast)
  tcp-sink PORT [--pattern] [--out F] [--idle S] [--count N]
                                        accept N connections one after the other (default
                                        1) and read each to its end; print `received BYTES
                                        bytes in SECS s (RATE MB/s)` per connection; with
                                        --pattern check byte i is i mod 251; stops reading a
                                        connection idle for S seconds (default 30); prints
                                        `accepted` and then `at BYTES` every 8 MiB
  tcp-send HOST PORT BYTES [--pattern]  send BYTES zero bytes (or the pattern: byte i is
                                        i mod 251), then read until the peer closes
  syn-flood HOST PORT RATE SECS         send RATE spoofed TCP SYNs a second (random sources in
                                        198.51.100.0/24, random ports and sequence numbers, an
                                        MSS option) to HOST:PORT for SECS seconds through a raw
                                        socket (needs root, IPv4); prints `flooding` after the
                                        first second and `sent N SYNs in S s (R/s, D refused
                                        by the device)` at the end
  relay FERRONET_IF KERNEL_TAP LOSS DELAY_MS SEED
                                        a lossy, slow wire (the stand-in for tc netem): relays
                                        Ethernet frames between the kernel side of FERRONET_IF
                                        (a packet socket) and the TAP KERNEL_TAP (whose kernel
                                        interface carries the Linux addresses), dropping each
                                        frame with probability LOSS and delaying the rest by
                                        DELAY_MS, in both directions
"""

import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time


PERIOD = bytes(range(251))


def listening():
    print("listening", flush=True)


def udp_echo(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    listening()
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def datagram(seq, size):
    body = bytes((seq + i) % 251 for i in range(size))
    return struct.pack(">I", seq) + body[4:]


def udp_check(host, port, count, size, dev):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(dev))
    resent = 0
    for seq in range(count):
        sent = datagram(seq, size)
        for _attempt in range(10):
            s.sendto(sent, (host, port))
            try:
                while True:
                    data, _ = s.recvfrom(65535)
                    if data[:4] == sent[:4]:
                        break
            except socket.timeout:
                resent += 1
                continue
            if data != sent:
                sys.exit(f"datagram {seq}: echo of {len(data)} bytes differs from the {size} sent")
            break
        else:
            sys.exit(f"datagram {seq}: no echo after 10 tries")
    print(f"{count} datagrams of {size} bytes echoed and verified ({resent} resent)")


def tcp_sink(port, pattern, out, idle, count):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::", port))
    srv.listen(8)
    listening()
    f = open(out, "wb") if out else None
    bad = None
    for _ in range(count):
        conn, _ = srv.accept()
        print("accepted", flush=True)
        conn.settimeout(idle)
        mark = 8 << 20
        started = time.monotonic()
        received = 0
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        why = "closed"
        while True:
            try:
                n = conn.recv_into(buf)
            except socket.timeout:
                why = f"idle for {idle} s"
                break
            except OSError as e:
                why = str(e)
                break
            if n == 0:
                break
            if pattern and bad is None:
                start = received % 251
                expect = (PERIOD * ((n + start) // 251 + 1))[start:start + n]
                if view[:n] != expect:
                    k = next(i for i in range(n) if buf[i] != expect[i])
                    bad = received + k
            if f:
                f.write(view[:n])
            received += n
            if received >= mark:
                print(f"at {received}", flush=True)
                mark += 8 << 20
        secs = max(time.monotonic() - started, 1e-9)
        conn.close()
        print(f"received {received} bytes in {secs:.3f} s ({received / secs / 1e6:.1f} MB/s), {why}",
              flush=True)
    if f:
        f.close()
    if bad is not None:
        sys.exit(f"byte {bad} differs from the pattern")
    if pattern:
        print("pattern ok", flush=True)


def tcp_send(host, port, nbytes, pattern):
    s = socket.create_connection((host, port), timeout=60)
    # A whole number of pattern periods, so that every chunk starts at pattern byte 0.
    chunk = PERIOD * 4096 if pattern else bytes(1 << 20)
    left = nbytes
    started = time.monotonic()
    while left > 0:
        n = min(left, len(chunk))
        s.sendall(chunk[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    secs = max(time.monotonic() - started, 1e-9)
    print(f"sent {nbytes} bytes in {secs:.3f} s ({nbytes / secs / 1e6:.1f} MB/s)", flush=True)


TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def relay(ferronet_if, kernel_tap, loss, delay_ms, seed):
    rng = random.Random(seed)
    delay = delay_ms / 1000.0
    tap = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", kernel_tap.encode(), IFF_TAP | IFF_NO_PI))
    pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    pkt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    pkt.bind((ferronet_if, 0))
    pkt.setblocking(False)
    queue = []  # (due, n, to_ferronet, frame)
    n = 0
    stats = {"to_ferronet": [0, 0], "to_kernel": [0, 0]}  # [relayed, dropped]
    listening()

    def enqueue(frame, to_ferronet):
        nonlocal n
        key = "to_ferronet" if to_ferronet else "to_kernel"
        if rng.random() < loss:
            stats[key][1] += 1
            return
        stats[key][0] += 1
        n += 1
        heapq.heappush(queue, (time.monotonic() + delay, n, to_ferronet, frame))

    try:
        while True:
            timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
            readable, _, _ = select.select([tap, pkt], [], [], timeout)
            for _ in range(64):
                if tap not in readable:
                    break
                try:
                    enqueue(os.read(tap, 65536), True)
                except BlockingIOError:
                    break
            for _ in range(64):
                if pkt not in readable:
                    break
                try:
                    frame, addr = pkt.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != PACKET_OUTGOING:
                    enqueue(frame, False)
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, to_ferronet, frame = heapq.heappop(queue)
                try:
                    if to_ferronet:
                        pkt.send(frame)
                    else:
                        os.write(tap, frame)
                except OSError:
                    pass  # a full queue: the frame is lost, as on a real wire
    finally:
        print(f"relay: {stats}", file=sys.stderr, flush=True)


def checksum(data):
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_flood(host, port, rate, secs):
    """Spoofed SYNs at `rate` a second for `secs` seconds (the kernel adds the IP checksum)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # Never wait for the device: a SYN it has no room for is counted and dropped.
    sock.setblocking(False)
    dst = socket.inet_aton(host)
    dropped = 0
    rnd = random.Random(0x5F100D)
    sent = 0
    announced = False
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= secs:
            break
        if elapsed >= 1 and not announced:
            print(f"flooding ({sent} SYNs in the first second)", flush=True)
            announced = True
        due = min(int(elapsed * rate) + 1, int(secs * rate))
        while sent < due:
            src = bytes([198, 51, 100, rnd.randrange(1, 255)])
            sport = rnd.randrange(1024, 65536)
            seq = rnd.getrandbits(32)
            # 24-byte header: data offset 6, SYN, window 64240, MSS 1460.
            tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 6 << 4, 0x02, 64240, 0, 0)
            tcp += b"\x02\x04\x05\xb4"
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
            try:
                sock.sendto(ip + tcp, (host, 0))
            except OSError:
                dropped += 1
            sent += 1
        time.sleep(0.001)
    print(f"sent {sent} SYNs in {secs} s ({sent / secs:.0f}/s, {dropped} refused by the device)",
          flush=True)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    mode, args = argv[1], argv[2:]
    if mode == "udp-echo":
        udp_echo(int(args[0]))
    elif mode == "udp-check":
        dev = args[5] if args[4:5] == ["--dev"] else None
        udp_check(args[0], int(args[1]), int(args[2]), int(args[3]), dev)
    elif mode == "tcp-sink":
        port, pattern, out, idle, count = int(args[0]), False, None, 30.0, 1
        rest = args[1:]
        while rest:
            flag = rest.pop(0)
            if flag == "--pattern":
                pattern = True
            elif flag == "--out":
                out = rest.pop(0)
            elif flag == "--idle":
                idle = float(rest.pop(0))
            elif flag == "--count":
                count = int(rest.pop(0))
            else:
                sys.exit(f"tcp-sink: unknown {flag}")
        tcp_sink(port, pattern, out, idle, count)
    elif mode == "tcp-send":
        tcp_send(args[0], int(args[1]), int(args[2]), args[3:] == ["--pattern"])
    elif mode == "syn-flood":
        syn_flood(args[0], int(args[1]), float(args[2]), float(args[3]))
    elif mode == "relay":
        relay(args[0], args[1], float(args[2]), float(args[3]), int(args[4]))
    else:
        sys.exit(f"unknown mode {mode}\n{__doc__}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main(sys.argv)
    except KeyboardInterrupt:
        pass
