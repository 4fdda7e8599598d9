#!/usr/bin/env python3
"""New TCP connections per second between two workloads, for bench/policy.ts.

usage:
  connrate.py server ADDRESS PORT [WORKERS]
      listens on ADDRESS:PORT; WORKERS forked processes (default 2) share the socket and
      for each connection: accept, send one byte, close. Prints "ready" once listening.
      Runs until SIGTERM (its workers die with it: PR_SET_PDEATHSIG).
  connrate.py client ADDRESS[,ADDRESS...] PORT SECONDS CONCURRENCY
      CONCURRENCY forked processes each open connections one after the other for SECONDS
      (to the addresses in turn, when there are several):
      connect (1 s timeout), read the server's byte, close with an RST (SO_LINGER 0: no
      TIME_WAIT, so the ports never run out). Prints one JSON line:
      {"connections", "errors", "seconds", "rate", "p50_us", "p99_us"}
      where the latencies are connect-to-byte times of successful connections.

Each connection is one new conntrack entry on each host, so its SYN goes through the
policy chains once per host; everything after it is an established packet.
"""
import ctypes
import json
import os
import signal
import socket
import struct
import sys
import time

LINGER_RST = struct.pack('ii', 1, 0)


def die_with_parent():
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def server(address, port, workers):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(4096)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                try:
                    c.send(b'x')
                except OSError:
                    pass
                c.close()
        children.append(pid)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('ready', flush=True)
    while True:
        signal.pause()


def client_worker(address, port, start, deadline, out_fd):
    count = 0
    errors = 0
    lat = []
    while time.monotonic() < start:
        time.sleep(0.001)
    targets = [(a, port) for a in address.split(',')]
    mono = time.monotonic_ns
    n = 0
    while True:
        t0 = mono()
        if t0 >= deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        s.settimeout(1.0)
        target = targets[n % len(targets)]
        n += 1
        try:
            s.connect(target)
            if s.recv(1) != b'x':
                raise OSError('no byte')
            count += 1
            lat.append(mono() - t0)
        except OSError:
            errors += 1
        finally:
            s.close()
    os.write(out_fd, (json.dumps({'count': count, 'errors': errors, 'lat': lat}) + '\n').encode())
    os._exit(0)


def client(address, port, seconds, concurrency):
    start = time.monotonic() + 0.2
    deadline = int((start + seconds) * 1e9)
    pipes = []
    for _ in range(concurrency):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            die_with_parent()
            client_worker(address, port, start, deadline, w)
        os.close(w)
        pipes.append((pid, r))
    count = 0
    errors = 0
    lat = []
    for pid, r in pipes:
        with os.fdopen(r) as f:
            d = json.loads(f.read())
        os.waitpid(pid, 0)
        count += d['count']
        errors += d['errors']
        lat.extend(d['lat'])
    lat.sort()

    def q(p):
        return round(lat[min(len(lat) - 1, max(0, int(p * len(lat) + 0.999999) - 1))] / 1000, 1) if lat else 0

    print(json.dumps({'connections': count, 'errors': errors, 'seconds': seconds, 'rate': count / seconds, 'p50_us': q(0.5), 'p99_us': q(0.99)}), flush=True)


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == 'server':
        server(a[1], int(a[2]), int(a[3]) if len(a) > 3 else 2)
    elif len(a) == 5 and a[0] == 'client':
        client(a[1], int(a[2]), float(a[3]), int(a[4]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
