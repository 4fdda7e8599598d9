#!/usr/bin/env python3
"""A long-lived ICMP prober for bench/convergence.ts, run inside a workload's namespace.

usage: icmp_prober.py          (commands on stdin, one per line; answers on stdout)

  clock                               -> clock MONO_NS
  probe ID ADDRESS INTERVAL_MS TIMEOUT_MS
      sends an echo request to ADDRESS now and every INTERVAL_MS until the first echo
      reply or TIMEOUT_MS (so at most TIMEOUT_MS / INTERVAL_MS + 1 requests):
                                      -> armed ID FIRST_SEND_NS
                                      -> reply ID RECV_NS USER_NS SENT SEQ SEQ_SENT_NS
                                         or timeout ID SENT
  cancel ID                           stops probe ID (no answer)
  quit                                (or end of input)

Every time is CLOCK_MONOTONIC in nanoseconds (time.monotonic_ns), the clock node's
process.hrtime.bigint() reads too: the caller takes its t0 on the same clock. RECV_NS is
the kernel's receive timestamp of the reply (SO_TIMESTAMPNS, CLOCK_REALTIME, converted to
the monotonic clock at the moment it is read), so that this process's scheduling delay
does not count; USER_NS is when this process read it. SEQ_SENT_NS is when the request
that got the reply was sent.
"""
import os
import select
import socket
import struct
import sys
import time

from icmp import echo

SO_TIMESTAMPNS = 35  # Linux (asm-generic), also SCM_TIMESTAMPNS
ECHO_PAYLOAD = b"cirrus-convergence"


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Probe:
    def __init__(self, pid, addr, interval_ns, deadline_ns):
        self.id = pid
        self.addr = addr
        self.interval = interval_ns
        self.deadline = deadline_ns
        self.sent = 0
        self.next_send = 0
        self.sent_at = {}  # seq -> send time


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    seq = 0
    probes = {}  # id -> Probe
    by_seq = {}  # seq -> Probe
    stdin = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
    pending = b""
    open_input = True

    def send(p, now):
        nonlocal seq
        seq = (seq + 1) & 0xFFFF
        try:
            sock.sendto(echo(ident, seq, ECHO_PAYLOAD), (p.addr, 0))
        except OSError:
            pass  # no route yet: counts as a request that went nowhere
        p.sent += 1
        p.sent_at[seq] = now
        by_seq[seq] = p
        p.next_send = now + p.interval

    def finish(p):
        probes.pop(p.id, None)
        for s in list(p.sent_at):
            if by_seq.get(s) is p:
                del by_seq[s]

    while open_input or probes:
        now = time.monotonic_ns()
        for p in list(probes.values()):
            if now >= p.deadline:
                say("timeout %s %d" % (p.id, p.sent))
                finish(p)
            elif now >= p.next_send:
                send(p, now)
        wait = 1.0
        for p in probes.values():
            wait = min(wait, max(0, min(p.next_send, p.deadline) - time.monotonic_ns()) / 1e9)
        readers = [sock] + ([stdin] if open_input else [])
        ready, _, _ = select.select(readers, [], [], wait)
        if sock in ready:
            while True:
                try:
                    packet, anc, _, (src, _) = sock.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                user = time.monotonic_ns()
                ihl = (packet[0] & 0x0F) * 4
                if len(packet) < ihl + 8:
                    continue
                icmp_type, _, _, rid, rseq = struct.unpack("!BBHHH", packet[ihl:ihl + 8])
                if icmp_type != 0 or rid != ident:
                    continue
                p = by_seq.get(rseq)
                if p is None or p.addr != src:
                    continue
                recv = user
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                        sec, nsec = struct.unpack("qq", data[:16])
                        # realtime -> monotonic with the offset of the two clocks right now
                        offset = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.monotonic_ns()
                        k = sec * 1_000_000_000 + nsec - offset
                        if 0 <= user - k < 1_000_000_000:
                            recv = k
                say("reply %s %d %d %d %d %d" % (p.id, recv, user, p.sent, rseq, p.sent_at[rseq]))
                finish(p)
        if open_input and stdin in ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                open_input = False
                probes.clear()
                by_seq.clear()
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "clock":
                    say("clock %d" % time.monotonic_ns())
                elif words[0] == "probe" and len(words) == 5:
                    now = time.monotonic_ns()
                    p = Probe(words[1], words[2], int(float(words[3]) * 1e6), now + int(float(words[4]) * 1e6))
                    probes[p.id] = p
                    send(p, now)
                    say("armed %s %d" % (p.id, now))
                elif words[0] == "cancel" and len(words) == 2:
                    p = probes.get(words[1])
                    if p is not None:
                        finish(p)
                elif words[0] == "quit":
                    open_input = False
                    probes.clear()
                    by_seq.clear()
                else:
                    say("error unknown command: %s" % line.decode())


main()
