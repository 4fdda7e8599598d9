#!/usr/bin/env python3
"""A UDP flow that a policy allows or denies, probed every few ms, for bench/policy.ts.

usage:
  udp_prober.py echo ADDRESS PORT
      echoes every datagram back to its sender. Prints "ready". Runs until SIGTERM.
  udp_prober.py probe ADDRESS PORT INTERVAL_MS MAX_SECONDS
      from one socket (one source port: one flow, one conntrack entry once allowed) sends a
      datagram every INTERVAL_MS for at most MAX_SECONDS, or until "quit" or end of input on
      stdin. Prints:
        start MONO_NS                       when the first datagram is sent
        echo SEQ SENT_NS RECV_NS            for each datagram that came back
        end SENT                            when it stops
Every time is CLOCK_MONOTONIC in ns (time.monotonic_ns), the clock of node's
process.hrtime.bigint(); network namespaces do not change it.
"""
import os
import select
import signal
import socket
import struct
import sys
import time

HEAD = struct.Struct('!QQ')


def echo(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print('ready', flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        try:
            s.sendto(data, peer)
        except OSError:
            pass


def probe(address, port, interval_ms, max_s):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((address, port))
    step = int(interval_ms * 1e6)
    mono = time.monotonic_ns
    start = mono()
    end = start + int(max_s * 1e9)
    print(f'start {start}', flush=True)
    seq = 0
    next_send = start
    stdin = sys.stdin.fileno()
    watch = [s, stdin]
    out = []
    while True:
        now = mono()
        if now >= end:
            break
        if now >= next_send:
            try:
                s.send(HEAD.pack(seq, now))
            except OSError:
                pass  # e.g. ECONNREFUSED from an earlier ICMP error: keep probing
            seq += 1
            next_send += step
            if next_send < now:
                next_send = now + step
            continue
        ready, _, _ = select.select(watch, [], [], (next_send - now) / 1e9)
        if stdin in ready:
            line = os.read(stdin, 4096)
            if not line or b'quit' in line:
                break
        if s in ready:
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                if len(data) >= HEAD.size:
                    n, sent = HEAD.unpack_from(data)
                    out.append(f'echo {n} {sent} {mono()}')
            if out:
                print('\n'.join(out), flush=True)
                out.clear()
    print(f'end {seq}', flush=True)


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == 'echo':
        echo(a[1], int(a[2]))
    elif len(a) == 5 and a[0] == 'probe':
        probe(a[1], int(a[2]), float(a[3]), float(a[4]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
