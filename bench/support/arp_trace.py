#!/usr/bin/env python3
"""Watches a workload namespace's ARP and ICMP echo traffic (bench/convergence.ts --trace-arp).

usage: arp_trace.py        (run inside the namespace; stops on SIGTERM or end of stdin)

One packet socket on every interface of the namespace, present or future (the workload's
eth0 appears only when its port is plumbed). Prints one line per packet of interest, with
the kernel's receive timestamp converted to CLOCK_MONOTONIC ns (the clock of node's
process.hrtime):
  ready MONO_NS
  arp-request out|in MONO_NS SENDER_IP TARGET_IP
  arp-reply   out|in MONO_NS SENDER_IP TARGET_IP
  echo-request out|in MONO_NS SRC DST
  echo-reply  out|in MONO_NS SRC DST
"""
import os
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def mono(anc, user):
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            k = sec * 1_000_000_000 + nsec - (time.clock_gettime_ns(time.CLOCK_REALTIME) - time.monotonic_ns())
            if 0 <= user - k < 1_000_000_000:
                return k
    return user


def main():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    out = sys.stdout
    out.write("ready %d\n" % time.monotonic_ns())
    out.flush()
    while True:
        ready, _, _ = select.select([s, sys.stdin], [], [], 1.0)
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            return
        if s not in ready:
            continue
        frame, anc, _, addr = s.recvmsg(2048, 64)
        t = mono(anc, time.monotonic_ns())
        ifname, pkttype = addr[0], addr[2]
        if ifname == "lo" or len(frame) < 14:
            continue
        way = "out" if pkttype == PACKET_OUTGOING else "in"
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0806 and len(frame) >= 42:
            op = struct.unpack("!H", frame[20:22])[0]
            spa, tpa = socket.inet_ntoa(frame[28:32]), socket.inet_ntoa(frame[38:42])
            kind = {1: "arp-request", 2: "arp-reply"}.get(op)
            if kind:
                out.write("%s %s %d %s %s\n" % (kind, way, t, spa, tpa))
                out.flush()
        elif ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 1:
            ihl = (frame[14] & 0x0F) * 4
            if len(frame) < 14 + ihl + 1:
                continue
            icmp_type = frame[14 + ihl]
            kind = {8: "echo-request", 0: "echo-reply"}.get(icmp_type)
            if kind:
                out.write("%s %s %d %s %s\n" % (kind, way, t, socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])))
                out.flush()


try:
    main()
except KeyboardInterrupt:
    pass
