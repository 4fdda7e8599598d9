#!/usr/bin/env python3
"""Configures workload interfaces inside network namespaces, over netlink.

Part of the Cirrus agent (src/agent/dataplane/nsconfig.ts runs it as one long-lived
child): spawning `ip -n NS` for every workload costs milliseconds each, entering the
namespace and sending four netlink requests costs a fraction of one.

Reads JSON lines from stdin:
  {"id": "...", "netns": "NAME or /path", "ifname": "eth0", "mac": "02:..", "mtu": 1450,
   "address": "10.0.0.3", "prefix": 24, "gateway": "10.0.0.1" or null, "dhcp": false}
and answers one JSON line each: {"id": "...", "error": null or "what failed"}.
For every request: lo up; IFNAME up with the MAC and MTU; unless dhcp, the address
(replacing) and a default route via the gateway (replacing).
"""
import ctypes
import errno
import json
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_MTU = 1, 4
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1

libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def attr(kind, data):
    length = 4 + len(data)
    return struct.pack("HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def message(kind, flags, body, seq):
    return struct.pack("IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body


def link_up(index, mac=None, mtu=None):
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
    if mac:
        body += attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    if mtu:
        body += attr(IFLA_MTU, struct.pack("I", mtu))
    return RTM_NEWLINK, 0, body


def address(index, ip, prefix):
    raw = socket.inet_aton(ip)
    body = struct.pack("BBBBI", socket.AF_INET, prefix, 0, 0, index) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body


def default_route(index, gateway):
    body = struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST, 0)
    body += attr(RTA_GATEWAY, socket.inet_aton(gateway)) + attr(RTA_OIF, struct.pack("I", index))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body


STEPS = ("lo up", "interface up", "address", "default route")


def configure(req):
    """Runs inside the workload's namespace; returns None or an error text."""
    ifname = req["ifname"]
    try:
        index = socket.if_nametoindex(ifname)
    except OSError:
        return "no interface %s in namespace %s" % (ifname, req["netns"])
    requests = [link_up(socket.if_nametoindex("lo")), link_up(index, req.get("mac"), req.get("mtu"))]
    if not req.get("dhcp"):
        requests.append(address(index, req["address"], req["prefix"]))
        if req.get("gateway"):
            requests.append(default_route(index, req["gateway"]))
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        sock.bind((0, 0))
        sock.send(b"".join(message(k, f, b, seq + 1) for seq, (k, f, b) in enumerate(requests)))
        pending = set(range(1, len(requests) + 1))
        while pending:
            data = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("IHHII", data, offset)
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("i", data, offset + 16)
                    pending.discard(seq)
                    if code != 0:
                        return "%s: %s" % (STEPS[seq - 1], os.strerror(-code))
                offset += (length + 3) & ~3
                if length == 0:
                    break
        return None
    finally:
        sock.close()


def main():
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        error = None
        path = req["netns"] if "/" in req["netns"] else "/run/netns/" + req["netns"]
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            error = "cannot open namespace %s: %s" % (req["netns"], e.strerror)
        else:
            try:
                setns(fd)
                error = configure(req)
            except (OSError, ValueError, KeyError) as e:
                error = str(e)
            finally:
                os.close(fd)
                setns(home)
        sys.stdout.write(json.dumps({"id": req.get("id"), "error": error}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
