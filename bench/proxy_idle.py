#!/usr/bin/python3
"""bench/proxy_idle.py - memory per idle proxied pair, for bench/proxy.sh.

usage: proxy_idle.py PORT N PID...   Opens N idle connections to 127.0.0.1:PORT, waits
until the proxy's processes (PID..., and their children: socat forks one per
connection) have settled, and prints the growth of their summed PSS in KiB per
connection. The connections are closed on exit. Loopback only."""
import os
import resource
import socket
import sys
import time


def tree(pid):
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                out += tree(int(c))
    except OSError:
        pass
    return out


def pss_kib(pids):
    total = 0
    for root in pids:
        for p in tree(root):
            try:
                with open(f"/proc/{p}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def main():
    port, n, pids = int(sys.argv[1]), int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    warm = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    time.sleep(0.5)
    before = pss_kib(pids)
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    last, stable = -1, 0
    deadline = time.monotonic() + 60
    while stable < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
        cur = pss_kib(pids)
        stable = stable + 1 if cur == last else 0
        last = cur
    print(f"{(last - before) / n:.2f}")
    for s in socks + warm:
        s.close()


if __name__ == "__main__":
    main()
