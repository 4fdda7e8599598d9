#!/usr/bin/env python3
"""DHCP load for bench/dhcp.ts: full DISCOVER/OFFER/REQUEST/ACK transactions from many
workload interfaces at once, one transaction in flight per interface (closed loop).

  dhcp_load.py SECONDS NETNS:MAC [NETNS:MAC ...]

Opens a packet socket on eth0 inside each namespace (entering it with setns), then for
SECONDS runs transactions on all of them; a reply not back within 1 s restarts the
transaction (counted as a timeout). Prints one JSON line: completed transactions,
timeouts, elapsed seconds and the transaction latencies' p50/p99 in ms.
"""
import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
ETH_P_IP = 0x0800
libc = ctypes.CDLL(None, use_errno=True)


def open_in(netns):
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    fd = os.open("/run/netns/" + netns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + netns)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        s.bind(("eth0", ETH_P_IP))
        s.setblocking(False)
        return s
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(fd)
        os.close(home)


def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(mac, xid, kind, server=None, address=None):
    opts = bytes([53, 1, kind])
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server) + bytes([50, 4]) + socket.inet_aton(address)
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, xid, 0, 0, b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac, b"", b"", 0x63825363) + opts + b"\xff"
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\0" * 4, b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp


def reply(data):
    """(xid, message type, yiaddr, server id) of a DHCP reply, or None."""
    ihl = (data[0] & 15) * 4
    if len(data) < ihl + 8 + 240 or data[9] != 17 or struct.unpack_from("!H", data, ihl + 2)[0] != 68:
        return None
    b = data[ihl + 8:]
    xid = struct.unpack_from("!I", b, 4)[0]
    yiaddr = socket.inet_ntoa(b[16:20])
    kind, server, i = None, None, 240
    while i + 1 < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        code, n = b[i], b[i + 1]
        if code == 53:
            kind = b[i + 2]
        elif code == 54:
            server = socket.inet_ntoa(b[i + 2:i + 6])
        i += 2 + n
    return xid, kind, yiaddr, server


def main():
    seconds = float(sys.argv[1])
    ports = []
    for arg in sys.argv[2:]:
        netns, mac = arg.split(":", 1)
        ports.append({"sock": open_in(netns), "mac": bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0"), "xid": 0})
    by_fd = {p["sock"].fileno(): p for p in ports}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    done, timeouts, latencies, xid = 0, 0, [], 1

    def start(p, now):
        nonlocal xid
        xid += 1
        p.update(xid=xid, began=now, sent=now)
        p["sock"].sendto(packet(p["mac"], xid, 1), ("eth0", ETH_P_IP, 0, 0, b"\xff" * 6))

    t0 = time.monotonic()
    for p in ports:
        start(p, t0)
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        for fd, _ in poller.poll(100):
            p = by_fd[fd]
            while True:
                try:
                    data = p["sock"].recv(2048)
                except BlockingIOError:
                    break
                r = reply(data)
                if not r or r[0] != p["xid"]:
                    continue
                now = time.monotonic()
                if r[1] == 2:  # offer: request it
                    p["sent"] = now
                    p["sock"].sendto(packet(p["mac"], p["xid"], 3, r[3], r[2]), ("eth0", ETH_P_IP, 0, 0, b"\xff" * 6))
                elif r[1] == 5:  # ack: one transaction
                    done += 1
                    latencies.append((now - p["began"]) * 1000)
                    start(p, now)
        now = time.monotonic()
        for p in ports:
            if now - p["sent"] > 1.0:
                timeouts += 1
                start(p, now)
    elapsed = time.monotonic() - t0
    latencies.sort()
    q = lambda f: round(latencies[min(len(latencies) - 1, int(f * len(latencies)))], 2) if latencies else None
    print(json.dumps({"transactions": done, "timeouts": timeouts, "seconds": round(elapsed, 2), "p50_ms": q(0.5), "p99_ms": q(0.99)}))


if __name__ == "__main__":
    main()
