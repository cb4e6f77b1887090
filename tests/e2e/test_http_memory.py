"""HTTP listings in bounded memory, given back after the clients leave (issue 11,
"Memory stays bounded and is given back", the HTTP half; test_ftp_memory.py is FTP's).

The attack: 300 clients send `GET /` for a directory of 20,000 entries and never read.
The old build formatted each listing whole into the connection's buffer (megabytes a
client, 3.1 GB with FTP's 300 on top). Now every listing holds a reference to one shared
snapshot of the directory and formats rows only as the socket drains.

These tests measure the server process: they need the machine to themselves.
"""
import socket
import time

import pytest

from conftest import FtpCtl, hard_timeout_fixture, measures, proc_fds, proc_status_kb, raise_nofile, wait_for

_hard_timeout = hard_timeout_fixture(180)

ENTRIES = 20000
CLIENTS = 300
# As in the FTP test: two clients in three shrink their receive buffer, so the server
# must hold those listings part-way through; the others take what the kernel gives.
SMALL_RCVBUF = 4096
PEAK_LIMIT_KB = 64 * 1024  # VmHWM
RETURN_SLACK = 0.10        # RSS after the attack, relative to before


@pytest.fixture
def bigroot(root):
    for i in range(ENTRIES):
        (root / f"entry-with-a-plausible-name-{i:05d}.txt").touch()
    return root


def _full_listing(srv):
    with socket.create_connection((srv.host, srv.port), timeout=20) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(1 << 16)
            if not b:
                return data
            data += b


@measures
@pytest.mark.xdist_group("serial")
def test_300_non_reading_listings_stay_bounded_and_memory_returns(bigroot, start, capsys):
    raise_nofile(CLIENTS * 2 + 64)
    srv = start("--proto", "http", "-q")
    data = _full_listing(srv)
    assert data.startswith(b"HTTP/1.1 200") and data.count(b'"type":"file"') == ENTRIES, data[:200]
    assert data.endswith(b"]}\n\r\n0\r\n\r\n"), data[-40:]
    time.sleep(0.3)
    base_rss = proc_status_kb(srv.pid, "VmRSS")
    base_fds = proc_fds(srv.pid)

    socks = []
    peak_sampled = 0
    try:
        for i in range(CLIENTS):
            s = socket.socket(socket.AF_INET)
            if i % 3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
            s.settimeout(20)
            s.connect((srv.host, srv.port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(s)
            if i % 50 == 0:
                peak_sampled = max(peak_sampled, proc_status_kb(srv.pid, "VmRSS"))
        time.sleep(1.0)  # every socket as full as it gets
        peak_sampled = max(peak_sampled, proc_status_kb(srv.pid, "VmRSS"))
        # Each got a listing (looked at without reading it), and others are served at once.
        for s in socks:
            assert s.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200"
        t0 = time.monotonic()
        with socket.create_connection((srv.host, srv.port), timeout=5) as o:
            o.sendall(b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert o.recv(12) == b"HTTP/1.1 200"
        assert time.monotonic() - t0 < 1.0
        hwm = proc_status_kb(srv.pid, "VmHWM")
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: proc_fds(srv.pid) <= base_fds, 10), \
        f"descriptors: {proc_fds(srv.pid)} open, {base_fds} before"
    assert wait_for(lambda: proc_status_kb(srv.pid, "VmRSS") <= base_rss * (1 + RETURN_SLACK), 10), \
        f"RSS {proc_status_kb(srv.pid, 'VmRSS')} kB after, {base_rss} kB before"
    after = proc_status_kb(srv.pid, "VmRSS")
    with capsys.disabled():
        print(f"\n  HTTP listing attack: RSS {base_rss} kB before, peak {hwm} kB (VmHWM; "
              f"sampled {peak_sampled} kB), {after} kB after")
    assert hwm <= PEAK_LIMIT_KB, f"peak RSS {hwm} kB over {PEAK_LIMIT_KB} kB"
    # The same listing afterwards (the head's Date may differ; the body may not).
    assert _full_listing(srv).partition(b"\r\n\r\n")[2] == data.partition(b"\r\n\r\n")[2]


DOWNLOADS = 600  # 600 x 128 KiB would be 75 MiB: past FILESEND_MEM_MAX (32 MiB)
API_HELD = 5     # /_/ requests holding a 1 MiB body (9 MiB counted each) meanwhile


@measures
@pytest.mark.xdist_group("serial")
def test_600_big_downloads_never_read_leave_the_api_its_memory(root, start, capsys):
    """Each big file sent to a loopback client holds a 128 KiB copy buffer (docs/serve.md,
    "Big files") from a budget of its own, apart from /_/'s. 600 clients (half over FTP)
    that ask for a big file and never read: copies stop at 32 MiB (the others get
    sendfile), and /_/ keeps all of its 64 MiB: with five 1 MiB /_/ bodies held
    meanwhile, a sixth is still answered 200, not 503 (it was with the copies counted in
    /_/'s budget). The peak stays bounded, and memory returns once they leave."""
    raise_nofile(DOWNLOADS * 3 + 64)
    with open(root / "big.bin", "wb") as f:
        f.truncate(64 << 20)  # sparse: no disk
    srv = start("-q", "--sniff-ms", "50")
    time.sleep(0.3)
    base_rss = proc_status_kb(srv.pid, "VmRSS")
    socks = []
    try:
        for i in range(DOWNLOADS):
            if i % 2:
                ctl = FtpCtl(srv, timeout=20).login()
                d = ctl.epsv_data(rcvbuf=SMALL_RCVBUF)
                code, text = ctl.cmd("RETR big.bin")
                assert code == 150, text
                socks += [ctl, d]
                continue
            s = socket.create_connection((srv.host, srv.port), timeout=20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(s)
        for _ in range(API_HELD):  # announced, never sent: counted until they go
            s = socket.create_connection((srv.host, srv.port), timeout=20)
            s.sendall(b"POST /_/anything HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\nx")
            socks.append(s)
        time.sleep(1.0)
        body = b"x" * (1 << 20)
        with socket.create_connection((srv.host, srv.port), timeout=10) as o:
            o.sendall(b"POST /_/anything HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            assert o.recv(12) == b"HTTP/1.1 200"
        hwm = proc_status_kb(srv.pid, "VmHWM")
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: proc_status_kb(srv.pid, "VmRSS") <= base_rss * (1 + RETURN_SLACK) + 1024, 10), \
        f"RSS {proc_status_kb(srv.pid, 'VmRSS')} kB after, {base_rss} kB before"
    with capsys.disabled():
        print(f"\n  600 big downloads never read: RSS {base_rss} kB before, peak {hwm} kB (VmHWM)")
    assert hwm <= PEAK_LIMIT_KB, f"peak RSS {hwm} kB over {PEAK_LIMIT_KB} kB"
