#!/usr/bin/env python3
# test/fuzz/seed_ninepsrv.py DIR: writes the seed corpus of fuzz_ninepsrv
# (kept in test/fuzz/corpus/ninepsrv): message bodies (type tag fields)
# separated by "#9P#", as the harness reads them; fid 0 is the root.
import struct, sys

SEP = b"#9P#"
tag = 0


def m(t, fmt, *args):
    global tag
    tag += 1
    out = bytearray(struct.pack("<BH", t, tag))
    for f, a in zip(fmt, args):
        if f == "s":
            a = a.encode() if isinstance(a, str) else a
            out += struct.pack("<H", len(a)) + a
        elif f == "w":
            out += struct.pack("<H", len(a))
            for n in a:
                out += struct.pack("<H", len(n)) + n.encode()
        elif f == "d":
            out += struct.pack("<I", len(a)) + a
        else:
            out += struct.pack("<" + f, a)
    return bytes(out)


version = lambda ms=65536: m(100, "Is", ms, "9P2000.L")
attach = lambda fid: m(104, "IIssI", fid, 0xFFFFFFFF, "", "", 0)
walk = lambda fid, nf, *names: m(110, "IIw", fid, nf, list(names))
lopen = lambda fid, fl: m(12, "II", fid, fl)
lcreate = lambda fid, name, fl, mode: m(14, "IsIII", fid, name, fl, mode, 0)
read = lambda fid, off, n: m(116, "IQI", fid, off, n)
write = lambda fid, off, data: m(118, "IQd", fid, off, data)
readdir = lambda fid, off, n: m(40, "IQI", fid, off, n)
getattr_ = lambda fid: m(24, "IQ", fid, 0x3FFF)
setattr = lambda fid, valid, mode=0, uid=0, gid=0, size=0, at=0, mt=0: m(
    26, "IIIIIQQQQQ", fid, valid, mode, uid, gid, size, at, 0, mt, 0)
mkdir = lambda fid, name, mode: m(72, "IsII", fid, name, mode, 0)
symlink = lambda fid, name, tgt: m(16, "IssI", fid, name, tgt, 0)
link = lambda dfid, fid, name: m(70, "IIs", dfid, fid, name)
unlinkat = lambda fid, name, fl: m(76, "IsI", fid, name, fl)
renameat = lambda f, n, nf, nn: m(74, "IsIs", f, n, nf, nn)
rename = lambda fid, dfid, name: m(20, "IIs", fid, dfid, name)
readlink = lambda fid: m(22, "I", fid)
clunk = lambda fid: m(120, "I", fid)
remove = lambda fid: m(122, "I", fid)
fsync = lambda fid, ds: m(50, "II", fid, ds)
statfs = lambda fid: m(8, "I", fid)

RDWR, CREAT, EXCL, TRUNC, APPEND, DIRECTORY = 2, 0o100, 0o200, 0o1000, 0o2000, 0o200000
seeds = {
    "session": [version(), attach(0), walk(0, 1, "d"), lopen(1, DIRECTORY),
                readdir(1, 0, 4096), getattr_(1), clunk(1), statfs(0)],
    "io": [walk(0, 1, "a"), lopen(1, RDWR), write(1, 0, b"hi there"),
           read(1, 0, 100), getattr_(1), fsync(1, 0), setattr(1, 8, size=2),
           read(1, 0, 100), clunk(1)],
    "create": [walk(0, 1), lcreate(1, "new", RDWR | CREAT | EXCL, 0o644),
               write(1, 0, b"x" * 16), clunk(1), walk(0, 2, "d"),
               mkdir(2, "sub", 0o755), symlink(2, "ln", "../../outside"),
               walk(0, 3, "a"), link(2, 3, "a2"), unlinkat(2, "a2", 0),
               renameat(0, "new", 2, "new2"), rename(3, 2, "a4"),
               walk(0, 4, "d", "sub"), remove(4), unlinkat(2, "e", 0x200)],
    "escape": [walk(0, 1, "out", "secret"), walk(0, 1, "out"), lopen(1, RDWR),
               walk(0, 2, "up"), lopen(2, DIRECTORY), walk(0, 3, "..", ".."),
               walk(0, 4, "abs"), readlink(4), setattr(4, 0x1 | 0x6 | 0x30, 0o777),
               lcreate(0, "out", RDWR | CREAT | TRUNC, 0o644), mkdir(0, "up", 0o755),
               walk(0, 5, "p"), lopen(5, RDWR), walk(0, 6, "d", "..", "..", "out"),
               link(0, 4, "abs2"), renameat(0, "out", 0, "out2")],
    "setattr": [walk(0, 1, "d", "b"), setattr(1, 0x1FF, 0o4755, 1, 1, 3, 5, 7),
                walk(0, 2), setattr(2, 0x1 | 0x30, 0o700),
                walk(0, 3, "a"), lopen(3, APPEND | 1), write(3, 1 << 40, b"z"),
                setattr(3, 0x8, size=1 << 30), getattr_(3)],
    "misc": [m(30, "IIs", 0, 9, "user.x"), m(32, "IsQI", 0, "user.y", 4, 0),
             m(18, "IsIIII", 0, "dev", 0o20644, 1, 3, 0),
             m(52, "IBIQQIs", 0, 1, 0, 0, 10, 42, "host"),
             m(54, "IBQQIs", 0, 1, 0, 10, 42, "host"),
             m(108, "H", 3), m(102, "Issi".replace("i", "I"), 1, "u", "", 0),
             m(200, ""), version(4096), attach(0), walk(0, 0, "d"), walk(0, 0, "..")],
}
for name, msgs in seeds.items():
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        f.write(SEP.join(msgs))
