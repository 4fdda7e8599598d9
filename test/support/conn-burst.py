#!/usr/bin/env python3
"""A burst of short TCP connections on loopback, for the conntrack event reader's test and
bench (test/support/ct-events.ts).

usage: conn-burst.py COUNT SECONDS
Opens and closes connections to a listener of its own on 127.0.0.1, one after the other,
until COUNT or SECONDS, whichever comes first. Each is closed with an RST (SO_LINGER 0): no
TIME_WAIT, so its conntrack entry ends after nf_conntrack_tcp_timeout_close. Prints
{"connections": N, "seconds": S}.
"""
import json
import socket
import struct
import sys
import time

LINGER_RST = struct.pack('ii', 1, 0)


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: conn-burst.py COUNT SECONDS')
    count, seconds = int(sys.argv[1]), float(sys.argv[2])
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(128)
    addr = srv.getsockname()
    start = time.monotonic()
    done = 0
    while done < count and time.monotonic() - start < seconds:
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        c.connect(addr)
        a, _ = srv.accept()
        c.close()
        a.close()
        done += 1
    print(json.dumps({'connections': done, 'seconds': round(time.monotonic() - start, 3)}))


if __name__ == '__main__':
    main()
