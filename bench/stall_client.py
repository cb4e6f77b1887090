"""N clients each GET a file through PORT, stop reading for PAUSE s, then read one after
another. Prints: the seconds from the end of the pause until all were read, and the
longest any connection went without a byte while it was being read (a stalled pair),
the connections that got nothing for TIMEOUT s (counted as stalled and left), and the
kernel's TCP memory (pages) when the pause ended."""
import socket
import sys
import time

n, port, path, pause, timeout = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                 float(sys.argv[4]), float(sys.argv[5]))
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    socks.append(s)
time.sleep(pause)
mem = [ln.split()[-1] for ln in open("/proc/net/sockstat") if ln.startswith("TCP:")][0]
t0 = time.monotonic()
worst, stalled = 0.0, 0
for s in socks:
    s.settimeout(timeout)
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        h, _, body = head.partition(b"\r\n\r\n")
        length = int([ln.split(b":")[1] for ln in h.split(b"\r\n")
                      if ln.lower().startswith(b"content-length")][0])
        got, last = len(body), time.monotonic()
        while got < length:
            d = s.recv(1 << 20)
            if not d:
                break
            now = time.monotonic()
            worst = max(worst, now - last)
            last, got = now, got + len(d)
    except (socket.timeout, TimeoutError):
        stalled += 1
        worst = max(worst, timeout)
    s.close()
print(f"{time.monotonic() - t0:.2f} {worst:.2f} {stalled} {mem}")
