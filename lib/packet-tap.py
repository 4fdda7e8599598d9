#!/usr/bin/env python3
"""Packet I/O for the agent's DHCP and DNS services (src/agent/services/packet-tap.ts).

Node has no packet sockets; this helper holds one. It receives the IPv4 UDP packets to
port 67 (DHCP) and 53 (DNS) arriving on any interface of the agent's namespace, keeps
those of the workload interfaces it was told about, and hands them over with the
interface they came in on: that is how the agent knows which port (and so which network)
asked, even when networks overlap. It sends what the agent built out of a given interface
to a given MAC, below the IP stack: no routing, so overlapping addresses never matter.
All protocol logic is in TypeScript; this only moves bytes.

Frames on both pipes: a 4-byte big-endian length, then the body.
  stdout, a packet received:  [u8 n][ifname: n bytes][source MAC: 6][IPv4 packet]
  stdin, op 1, send:          [1][u8 n][ifname][destination MAC: 6][IPv4 packet]
  stdin, op 2, interfaces:    [2][names separated by newlines]
"""
import ctypes
import os
import select
import socket
import struct
import sys

ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
PR_SET_PDEATHSIG = 1
SIGKILL = 9

# Classic BPF over the IP header (a SOCK_DGRAM packet socket filters from the network
# header): UDP, not a fragment, destination port 67 or 53.
FILTER = [
    (0x30, 0, 0, 9),        # ldb [9]              protocol
    (0x15, 0, 6, 17),       # jeq #17              UDP, else drop
    (0x28, 0, 0, 6),        # ldh [6]              flags + fragment offset
    (0x45, 4, 0, 0x1FFF),   # jset #0x1fff         a fragment: drop
    (0xB1, 0, 0, 0),        # ldxb 4*([0]&0xf)     header length
    (0x48, 0, 0, 2),        # ldh [x+2]            destination port
    (0x15, 2, 0, 67),       # jeq #67              accept
    (0x15, 1, 0, 53),       # jeq #53              accept, else drop
    (0x06, 0, 0, 0),        # ret #0               drop
    (0x06, 0, 0, 0x40000),  # ret #262144          accept
]


def open_socket():
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in FILTER))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(FILTER), ctypes.addressof(program)))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        pass  # kernels before 4.20: outgoing copies are skipped below
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    # Whatever arrived before the filter was attached.
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    return sock, program


def main():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, SIGKILL)  # dies with the agent
    sock, _program = open_socket()
    out = sys.stdout.buffer
    interfaces = set()
    pending = b""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(0, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == 0:
                data = os.read(0, 1 << 16)
                if not data:
                    return
                pending += data
                while len(pending) >= 4:
                    (length,) = struct.unpack_from(">I", pending)
                    if len(pending) < 4 + length:
                        break
                    body, pending = pending[4:4 + length], pending[4 + length:]
                    if body[:1] == b"\x01":
                        n = body[1]
                        ifname = body[2:2 + n].decode()
                        mac = body[2 + n:8 + n]
                        try:
                            sock.sendto(body[8 + n:], (ifname, ETH_P_IP, 0, 0, mac))
                        except OSError:
                            pass  # the interface went away meanwhile
                    elif body[:1] == b"\x02":
                        interfaces = set(body[1:].decode().split("\n")) - {""}
                continue
            for _ in range(256):
                try:
                    data, (ifname, _, pkttype, _, mac) = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # e.g. the interface vanished while naming it
                if pkttype == PACKET_OUTGOING or ifname not in interfaces:
                    continue
                name = ifname.encode()
                out.write(struct.pack(">IB", 1 + len(name) + 6 + len(data), len(name)) + name + mac[:6].ljust(6, b"\0") + data)
            out.flush()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
