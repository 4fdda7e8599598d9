#!/usr/bin/env python3
"""Reads the packets nftables logs to an NFLOG group and prints one JSON line each.

Part of the Cirrus agent (src/agent/flows/denied.ts runs it as a long-lived child): the
policy and security-group chains log what they drop (`log prefix "..." group N`), and Node
has no netlink. Usage: nflog.py GROUP. Prints
  {"t": µs, "prefix": "...", "mark": N, "src": "a.b.c.d", "dst": "...", "proto": N,
   "sport": N, "dport": N, "len": IP total length}
for each IPv4 packet of the group, in the network namespace it runs in. Only the first
64 bytes of each packet are copied (headers).
"""
import json
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_PF_BIND = 1, 3
NFULNL_COPY_PACKET = 2
NFULA_MARK, NFULA_PAYLOAD, NFULA_PREFIX = 2, 9, 10
COPY_RANGE = 64


def attr(kind, data):
    length = 4 + len(data)
    return struct.pack('=HH', length, kind) + data + b'\0' * ((4 - length % 4) % 4)


def config(sock, family, group, attrs):
    body = struct.pack('=BBH', family, 0, socket.htons(group)) + b''.join(attrs)
    msg = struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, 0, 0) + body
    sock.send(msg)
    reply = sock.recv(4096)
    kind = struct.unpack_from('=H', reply, 4)[0]
    if kind == NLMSG_ERROR:
        err = struct.unpack_from('=i', reply, 16)[0]
        if err:
            raise OSError(-err, f'NFLOG config: errno {-err}')


def packet(data, now):
    """The attributes of one NFULNL_MSG_PACKET (after the nfgenmsg header)."""
    out = {'t': now, 'prefix': '', 'mark': 0}
    payload = b''
    off = 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from('=HH', data, off)
        if length < 4:
            break
        value = data[off + 4:off + length]
        kind &= 0x7fff
        if kind == NFULA_PREFIX:
            out['prefix'] = value.split(b'\0', 1)[0].decode('utf-8', 'replace')
        elif kind == NFULA_MARK:
            out['mark'] = struct.unpack('!I', value[:4])[0]
        elif kind == NFULA_PAYLOAD:
            payload = value
        off += (length + 3) & ~3
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 15) * 4
    out['len'] = struct.unpack_from('!H', payload, 2)[0]
    out['proto'] = payload[9]
    out['src'] = socket.inet_ntoa(payload[12:16])
    out['dst'] = socket.inet_ntoa(payload[16:20])
    out['sport'] = out['dport'] = 0
    if out['proto'] in (6, 17) and len(payload) >= ihl + 4:
        out['sport'], out['dport'] = struct.unpack_from('!HH', payload, ihl)
    return out


def main():
    group = int(sys.argv[1])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((0, 0))
    config(sock, socket.AF_INET, 0, [attr(NFULA_CFG_CMD, struct.pack('=B', NFULNL_CFG_CMD_PF_BIND))])
    config(sock, 0, group, [attr(NFULA_CFG_CMD, struct.pack('=B', NFULNL_CFG_CMD_BIND))])
    config(sock, 0, group, [attr(NFULA_CFG_MODE, struct.pack('!IBB', COPY_RANGE, NFULNL_COPY_PACKET, 0))])
    print(json.dumps({'ready': group}), flush=True)
    while True:
        try:
            data = sock.recv(1 << 16)
        except OSError:  # ENOBUFS: the kernel dropped some while we were busy; go on
            continue
        now = int(time.time() * 1e6)
        off = 0
        lines = []
        while off + 16 <= len(data):
            length, kind = struct.unpack_from('=IH', data, off)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                p = packet(data[off + 20:off + length], now)
                if p:
                    lines.append(json.dumps(p))
            off += (length + 3) & ~3
        if lines:
            sys.stdout.write('\n'.join(lines) + '\n')
            sys.stdout.flush()


if __name__ == '__main__':
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
