#!/usr/bin/env python3
"""Which back end answers new TCP connections to a floating IP, for bench/fip.ts.

usage:
  fip_prober.py serve ADDRESS PORT NAME
      listens on ADDRESS:PORT; to every connection it sends NAME and a newline, then
      closes. Prints "ready" once listening. Runs until SIGTERM.
  fip_prober.py probe ADDRESS PORT WORKERS INTERVAL_MS TIMEOUT_MS
      WORKERS threads each open new connections one after the other (connect with a
      TIMEOUT_MS timeout, read the name, close with an RST: no TIME_WAIT), pausing
      INTERVAL_MS between two; every attempt is recorded with its start time
      (CLOCK_MONOTONIC ns, the clock node's process.hrtime reads) and the name that
      answered, or none. Prints "ready", then answers lines on stdin:
        report T0   one JSON line about the attempts started at or after T0:
                    {"attempts", "errors", "lastError", "counts": {NAME: n},
                     "last": {NAME: ns}}  (times in ns; lastError null if none).
                    Attempts before T0 are forgotten.
      Exits when stdin closes.
"""
import json
import signal
import socket
import struct
import sys
import threading
import time

LINGER_RST = struct.pack('ii', 1, 0)


def serve(address, port, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(4096)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    reply = (name + '\n').encode()
    print('ready', flush=True)
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            continue
        try:
            c.sendall(reply)
        except OSError:
            pass
        c.close()


def probe(address, port, workers, interval_ms, timeout_ms):
    records = []  # (start ns, name or None); list.append is atomic under the GIL
    lock = threading.Lock()
    stopping = threading.Event()
    target = (address, port)
    pause = interval_ms / 1000.0
    timeout = timeout_ms / 1000.0

    def worker():
        while not stopping.is_set():
            t0 = time.monotonic_ns()
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            s.settimeout(timeout)
            name = None
            try:
                s.connect(target)
                name = s.recv(64).decode().strip() or None
            except OSError:
                pass
            finally:
                s.close()
            with lock:
                records.append((t0, name))
            if pause:
                time.sleep(pause)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    print('ready', flush=True)
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] != 'report':
            print(json.dumps({'error': 'unknown command: ' + line.strip()}), flush=True)
            continue
        since = int(words[1])
        with lock:
            kept = [r for r in records if r[0] >= since]
            records[:] = kept
        counts = {}
        last = {}
        errors = 0
        last_error = None
        for t, name in kept:
            if name is None:
                errors += 1
                last_error = t if last_error is None else max(last_error, t)
            else:
                counts[name] = counts.get(name, 0) + 1
                last[name] = max(last.get(name, t), t)
        print(json.dumps({'attempts': len(kept), 'errors': errors, 'lastError': last_error, 'counts': counts, 'last': last}), flush=True)
    stopping.set()


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == 'serve':
        serve(a[1], int(a[2]), a[3])
    elif len(a) == 6 and a[0] == 'probe':
        probe(a[1], int(a[2]), int(a[3]), float(a[4]), float(a[5]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
