#!/usr/bin/python3
"""Asks vmmd to run a command in a job's guest with stdio of the caller's
choosing, as a hostile client would (not vmenv-exec): the attacks of the
security tests. Prints vmmd's replies, one JSON object per line.

    sendfds.py SOCKET JOB KIND [PATH] -- ARGV...
KIND: pipe       ordinary pipes (the positive control); output on stdout
      opath-out  stdout and stderr are O_PATH fds of PATH
      opath-in   stdin is an O_PATH fd of PATH, stdout a pipe
      rdonly-out stdout is PATH opened read-only
"""
import json
import os
import select
import socket
import struct
import sys


def fds_for(kind, path):
    if kind == "pipe":
        r, w = os.pipe()
        return [os.open("/dev/null", os.O_RDONLY), w, w], r
    if kind == "opath-out":
        p = os.open(path, os.O_PATH)
        return [os.open("/dev/null", os.O_RDONLY), p, p], None
    if kind == "opath-in":
        r, w = os.pipe()
        return [os.open(path, os.O_PATH), w, w], r
    if kind == "rdonly-out":
        p = os.open(path, os.O_RDONLY)
        return [os.open("/dev/null", os.O_RDONLY), p, p], None
    raise SystemExit("bad kind " + kind)


def main():
    args = sys.argv[1:]
    cut = args.index("--")
    sock, job, kind = args[0], int(args[1]), args[2]
    path = args[3] if cut > 3 else None
    argv = args[cut + 1:]
    fds, out_r = fds_for(kind, path)
    req = {"op": "exec", "job": job, "argv": argv, "env": ["PATH=/bin:/usr/bin"],
           "cwd": "/", "stdin": kind == "opath-in", "merge_stderr": True,
           "script": False}
    body = json.dumps(req).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    socket.send_fds(s, [struct.pack(">I", len(body)) + body], fds)
    for fd in set(fds):
        os.close(fd)
    buf, got = b"", b""
    watch = [s] + ([out_r] if out_r is not None else [])
    while watch:
        ready, _, _ = select.select(watch, [], [], 60)
        if not ready:
            print('{"timeout": true}')
            break
        for r in ready:
            if r is s:
                chunk = s.recv(65536)
                if not chunk:
                    watch.remove(s)
                    continue
                buf += chunk
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    msg = buf[4:4 + n].decode(errors="replace")
                    print(msg, flush=True)
                    buf = buf[4 + n:]
                    ev = json.loads(msg).get("event", "")
                    if ev in ("exit", "error") or json.loads(msg).get("ok") is False:
                        watch.remove(s)
                        break
            else:
                chunk = os.read(r, 65536)
                if not chunk:
                    watch.remove(r)
                    continue
                got += chunk
    if got:
        sys.stdout.write("output: " + got.decode(errors="replace"))


main()
