#!/usr/bin/env python3
"""Pings many addresses at once (one raw ICMP socket) and prints how many answered.

usage: icmp_sweep.py TIMEOUT_S ADDRESS...   (run inside the probe's network namespace)
Sends one echo request to every address, resends to the silent ones every 200 ms, and
stops when all answered or TIMEOUT_S passed. Output: JSON {"answered": n, "total": m, "ms": t}.
"""
import json, os, select, socket, struct, sys, time

from icmp import echo

PAYLOAD = b"cirrus-bench"

def main():
    timeout = float(sys.argv[1])
    targets = sys.argv[2:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    silent = set(targets)
    start = time.monotonic()
    deadline = start + timeout
    while silent and time.monotonic() < deadline:
        for i, addr in enumerate(sorted(silent)):
            try:
                sock.sendto(echo(ident, i & 0xFFFF, PAYLOAD), (addr, 0))
            except OSError:
                pass
        resend = min(deadline, time.monotonic() + 0.2)
        while silent and time.monotonic() < resend:
            ready, _, _ = select.select([sock], [], [], max(0.0, resend - time.monotonic()))
            if not ready:
                continue
            packet, (src, _) = sock.recvfrom(2048)
            ihl = (packet[0] & 0x0F) * 4
            icmp_type, _, _, pid = struct.unpack("!BBHH", packet[ihl:ihl + 6])
            if icmp_type == 0 and pid == ident:
                silent.discard(src)
    print(json.dumps({"answered": len(targets) - len(silent), "total": len(targets), "ms": round((time.monotonic() - start) * 1000, 1)}))

main()
