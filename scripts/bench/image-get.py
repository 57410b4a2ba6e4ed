#!/usr/bin/env python3
"""Downloads URL to FILE with 4 MiB reads and writes, then fsyncs FILE.

For scripts/bench-image.sh: a client whose own writes are not the limit (curl writes
8-16 KiB at a time), to show what a server's download path delivers to disk.
Usage: image-get.py URL FILE [HEADER: VALUE]...
"""
import http.client
import os
import sys
import urllib.parse


def main():
    url, out, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80)
    conn.request("GET", u.path, headers=dict(h.split(": ", 1) for h in headers))
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"image-get.py: {url} answered {resp.status}")
    buf = memoryview(bytearray(4 << 20))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while n := resp.readinto(buf):
            view = buf[:n]
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
