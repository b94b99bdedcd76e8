#!/usr/bin/env python3
"""TCP latency (1-byte round trips) and bandwidth (one stream) between two
processes: `pingpong.py server PORT` on one end, `pingpong.py client HOST
PORT [MIB]` on the other. The client prints "rtt_us=.. mbps=..".
bench/multinode runs it between two guests of a job and between two host
processes in the same run."""
import socket
import sys
import time

ROUNDS = 2000


def server(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(ROUNDS):
        c.sendall(c.recv(1))
    total = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        total += len(b)
    c.sendall(str(total).encode())
    c.close()


def client(host, port, mib):
    for _ in range(100):
        try:
            c = socket.create_connection((host, port), timeout=30)
            break
        except OSError:
            time.sleep(0.1)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        c.sendall(b"x")
        c.recv(1)
        rtts.append(time.perf_counter() - t)
    rtts.sort()
    buf = b"\0" * (1 << 20)
    t = time.perf_counter()
    for _ in range(mib):
        c.sendall(buf)
    c.shutdown(socket.SHUT_WR)
    got = int(c.recv(64))
    dt = time.perf_counter() - t
    print("rtt_us=%.1f mbps=%.1f bytes=%d" % (rtts[len(rtts) // 2] * 1e6, got / dt / 1e6, got))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 256)
