#!/usr/bin/env python3
"""Asks for the A record of NAME.local over mDNS and prints the address of the answer.

Usage: mdns-query.py {legacy|multicast} NAME.local

legacy:    a one-shot query from an ephemeral port to 224.0.0.251:5353; the responder answers
           by unicast to that port (RFC 6762 section 6.7). dig -p 5353 @224.0.0.251 cannot
           see such answers: its socket is connected to 224.0.0.251 and the kernel refuses
           datagrams from the responder's own address.
multicast: a full mDNS query from port 5353 by a member of 224.0.0.251; the answer must come
           to the group 224.0.0.251:5353.

Exit 0 and the address on stdout when an answer for NAME came within 6 s, 1 otherwise.
Only the standard library; IPv4 only.
"""
import socket
import struct
import sys
import time

GROUP, PORT = "224.0.0.251", 5353
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux: 8


def query(name, qid):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def read_name(msg, i, depth=0):
    parts = []
    while depth < 20:
        n = msg[i]
        if n == 0:
            break
        if n & 0xC0 == 0xC0:
            ptr = ((n & 0x3F) << 8) | msg[i + 1]
            parts.append(read_name(msg, ptr, depth + 1))
            break
        parts.append(msg[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    return ".".join(p for p in parts if p)


def a_records(msg, name):
    """The A addresses for `name` in the answer section of an mDNS response."""
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if not flags & 0x8000:
        return []
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    out = []
    for _ in range(an):
        rname = read_name(msg, i)
        i = skip_name(msg, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4 and rname.lower() == name.lower().rstrip("."):
            out.append(socket.inet_ntoa(msg[i:i + 4]))
        i += rdlen
    return out


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("legacy", "multicast"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, name = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    if mode == "multicast":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", PORT))
        mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    deadline = time.monotonic() + 6
    s.sendto(query(name, 0 if mode == "multicast" else 0x4242), (GROUP, PORT))
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg, anc, _, _ = s.recvmsg(9000, 256)
        except socket.timeout:
            break
        if mode == "multicast":
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: addr is the
            # datagram's destination, which must be the group.
            dst = [socket.inet_ntoa(d[8:12]) for lvl, typ, d in anc
                   if lvl == socket.IPPROTO_IP and typ == IP_PKTINFO]
            if dst != [GROUP]:
                continue
        try:
            addrs = a_records(msg, name)
        except (IndexError, struct.error):
            continue
        if addrs:
            print(addrs[0])
            return 0
    print(f"no mDNS answer for {name}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
