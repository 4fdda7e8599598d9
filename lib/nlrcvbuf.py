#!/usr/bin/env python3
"""Gives another process's netfilter event socket a large receive buffer, from outside.

Part of the Cirrus agent (src/agent/flows/event-buffer.ts runs it on its `conntrack -E`):
conntrack-tools 1.4.7 applies --buffer-size to its request socket, not to the socket it
reads events from, which keeps net.core.rmem_default (208 KB) and overruns (ENOBUFS, events
lost) at a few thousand connections a second. The sysctls are host-wide; this changes the
one socket instead: it finds the process's NETLINK_NETFILTER sockets subscribed to multicast
groups (/proc/PID/fd against the Inode and Groups columns of /proc/PID/net/netlink, which is
the process's network namespace), duplicates each with pidfd_open + pidfd_getfd (Linux 5.6;
the duplicate is the same socket, so the process's own socket changes) and sets
SO_RCVBUFFORCE (CAP_NET_ADMIN: not bounded by net.core.rmem_max).

Usage: nlrcvbuf.py [--wait SECONDS] PID [BYTES]
  BYTES   sets each socket's receive buffer to BYTES (the kernel doubles it for its
          bookkeeping, and SO_RCVBUF reads back the doubled value); without BYTES, only reads.
  --wait  the process may not have opened its socket yet: look again until it has, for up
          to SECONDS (default 0: once).
Prints one JSON line, {"pid": N, "sockets": [{"fd": N, "inode": N, "groups": "hex",
"rcvbuf": SO_RCVBUF read back}]}, or exits 1 with the reason on stderr (2: bad usage).
"""
import ctypes
import errno
import json
import os
import socket
import sys
import time

NETLINK_NETFILTER = 12
SO_RCVBUFFORCE = 33
SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # the same number on every architecture
POLL_S = 0.02

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class Failure(Exception):
    pass


def syscall(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def subscribed(pid):
    """{fd: (inode, groups)} of the process's netfilter sockets that joined a multicast group."""
    wanted = {}
    with open(f'/proc/{pid}/net/netlink') as f:
        next(f)  # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
        for line in f:
            cols = line.split()
            # Groups shows the first 32 groups (conntrack's and expectations' are 1-6).
            if int(cols[1]) == NETLINK_NETFILTER and int(cols[3], 16):
                wanted[int(cols[9])] = cols[3]
    found = {}
    for name in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{name}')
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith('socket:['):
            inode = int(target[8:-1])
            if inode in wanted:
                found[int(name)] = (inode, wanted[inode])
    return found


def find(pid, wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = subscribed(pid)
        except FileNotFoundError:
            raise Failure(f'process {pid} is gone')
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(POLL_S)


def explain(e, pid):
    if e.errno == errno.ENOSYS:
        return f'pidfd_open/pidfd_getfd not available: needs Linux 5.6 or later (this is {os.uname().release})'
    if e.errno == errno.ESRCH:
        return f'process {pid} is gone'
    if e.errno == errno.EPERM:
        return f'not permitted on process {pid}: pidfd_getfd needs ptrace rights over it (CAP_SYS_PTRACE), SO_RCVBUFFORCE needs CAP_NET_ADMIN'
    return e.strerror


def adjust(pid, found, size):
    out = []
    pidfd = syscall(SYS_PIDFD_OPEN, pid, 0)
    try:
        for fd, (inode, groups) in sorted(found.items()):
            s = socket.socket(fileno=syscall(SYS_PIDFD_GETFD, pidfd, fd, 0))
            with s:
                # The fd may have been closed and reused since /proc was read.
                if os.fstat(s.fileno()).st_ino != inode:
                    raise Failure(f'process {pid}: fd {fd} is no longer socket {inode}')
                if size is not None:
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
                out.append({'fd': fd, 'inode': inode, 'groups': groups, 'rcvbuf': s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)})
    finally:
        os.close(pidfd)
    return out


def usage(why):
    print(f'nlrcvbuf.py: {why}\nusage: nlrcvbuf.py [--wait SECONDS] PID [BYTES]', file=sys.stderr)
    sys.exit(2)


def parse(argv):
    wait_s = 0.0
    if argv[:1] == ['--wait']:
        if len(argv) < 2:
            usage('--wait needs SECONDS')
        try:
            wait_s = float(argv[1])
        except ValueError:
            usage(f'--wait: not a number of seconds: {argv[1]!r}')
        if not 0 <= wait_s <= 60:
            usage('--wait: SECONDS between 0 and 60')
        argv = argv[2:]
    if len(argv) not in (1, 2) or not all(a.isdigit() for a in argv):
        usage('expects PID and optionally BYTES, as positive integers')
    pid = int(argv[0])
    size = int(argv[1]) if len(argv) == 2 else None
    # SO_RCVBUFFORCE takes an int; the kernel doubles it.
    if pid == 0 or (size is not None and not 0 < size <= 2**30):
        usage('PID > 0, 0 < BYTES <= 1073741824')
    return pid, size, wait_s


def main():
    pid, size, wait_s = parse(sys.argv[1:])
    try:
        try:
            found = find(pid, wait_s)
            if not found:
                raise Failure(f'process {pid} has no netfilter socket subscribed to events' + (f' (waited {wait_s:g} s)' if wait_s else ''))
            sockets = adjust(pid, found, size)
        except OSError as e:
            raise Failure(explain(e, pid))
    except Failure as e:
        print(f'nlrcvbuf.py: {e}', file=sys.stderr)
        sys.exit(1)
    print(json.dumps({'pid': pid, 'sockets': sockets}), flush=True)


if __name__ == '__main__':
    main()
