"""loopkit watch against hostile peers (issue 15's review): a service that answers with
terminal escapes, a password in a target's URL that any local user could read on the
page, a web page of another origin that holds the page's connections, and a history
file other users could read."""
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import shutil
import tempfile

import pytest

from conftest import LOOPKIT, hard_timeout_fixture, proc_status_kb, sanitizer_build
from test_browser import Chromium, chromium_binary
from watchlab import Watcher, db_rows, lease_ports, run, services_fixture

_hard_timeout = hard_timeout_fixture(120)
svc = services_fixture()


class FakeFtp:
    """An FTP server on loopback that greets with `greeting` and, when it is 220, takes
    USER and PASS (230) and remembers them."""

    def __init__(self, greeting=b"220 ready\r\n"):
        self.greeting = greeting
        self.logins = []
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        with c:
            c.settimeout(5)
            c.sendall(self.greeting)
            if not self.greeting.startswith(b"220"):
                return
            f = c.makefile("rb")
            user = f.readline().decode().strip()
            c.sendall(b"331 password please\r\n")
            pw = f.readline().decode().strip()
            self.logins.append((user, pw))
            c.sendall(b"230 in\r\n")

    def close(self):
        self.s.close()


def test_a_password_in_a_url_is_never_shown(tmp_path):
    ftp = FakeFtp()
    url = f"ftp://ci:s3cret-pw@127.0.0.1:{ftp.port}/"
    shown = f"ftp://ci:xxxxx@127.0.0.1:{ftp.port}/"
    db = tmp_path / "h.db"
    w = Watcher("-i", "200ms", url, db=db)
    try:
        row = w.wait_state(shown, "up")  # the name defaults to the URL as shown
        assert row["url"] == shown, row
        assert ("USER ci", "PASS s3cret-pw") in ftp.logins  # the probe logs in with the real one
        with open(f"/proc/{w.pid}/cmdline", "rb") as f:  # what ps shows every user
            args = f.read()
        assert b"s3cret" not in args and f"ftp://ci:*********@127.0.0.1:{ftp.port}/".encode() in args, args
        for path in ("/", "/metrics", "/api/status"):
            st, _, body = w.get(path)
            assert st == 200 and b"s3cret" not in body and b"xxxxx" in body, (path, body[:300])
        time.sleep(1.5)  # a batch in the history
        assert w.stop() == 0
        assert "s3cret" not in repr(db_rows(db, "SELECT name, url FROM targets")), "the history keeps it"
        r = run("--once", "--json", url.replace(str(ftp.port), "1"))
        assert r.returncode == 1 and "s3cret" not in r.stdout and "xxxxx" in r.stdout, r.stdout
    finally:
        w.close()
        ftp.close()


def test_what_a_service_says_cannot_drive_the_terminal(tmp_path):
    ftp = FakeFtp(b"500 \x1b]0;owned\x07\x1b[2J\x1b[31mFAKE\xc2\x9b\xff\r\n")
    try:
        r = subprocess.run([LOOPKIT, "watch", "--once", "--retries", "0",
                            f"ftp://127.0.0.1:{ftp.port}/"], capture_output=True, timeout=30)
        assert r.returncode == 1
        out = r.stdout
        assert b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out and b"\xff" not in out, out
        assert b'FTP greeting "500 \\x1b]0;owned\\x07\\x1b[2J\\x1b[31mFAKE\\xc2\\x9b\\xff"' in out, out
        # the change lines and --on-change's WATCH_DETAIL get the same safe text
        log = tmp_path / "hook.log"
        w = Watcher("-i", "200ms", "--retries", "0", f"ftp://127.0.0.1:{ftp.port}/",
                    "--on-change", f'printf "%s" "$WATCH_DETAIL" > {log}', db=tmp_path / "h.db")
        try:
            deadline = time.monotonic() + 10
            while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline:
                time.sleep(0.05)
            detail = log.read_bytes()
            assert detail.startswith(b'FTP greeting "500 \\x1b]0;owned') and b"\x1b" not in detail, detail
            assert w.stop() == 0
            assert w.lines and all("\x1b" not in line for _, line in w.lines), w.lines
        finally:
            w.close()
    finally:
        ftp.close()


SSE_MAX = 32  # WATCH_SSE_MAX: half of WATCH_PAGE_CONNS


def open_stream(port):
    """An /events stream with its head read: (socket, status line)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            break
        head += b
    return s, head.split(b"\r\n", 1)[0].decode(), head


def test_live_streams_are_bounded_and_leave_room_for_metrics(tmp_path):
    w = Watcher("-i", "1h", "tcp://127.0.0.1:1", db=tmp_path / "h.db")
    held = []
    try:
        for _ in range(SSE_MAX):
            s, line, _ = open_stream(w.port)
            held.append(s)
            assert line == "HTTP/1.1 200 OK", line
        s, line, head = open_stream(w.port)
        s.close()
        assert line == "HTTP/1.1 503 Service Unavailable" and b"Retry-After: 5" in head, head
        for path in ("/metrics", "/api/status", "/"):  # Prometheus and people still get in
            st, _, _ = w.get(path)
            assert st == 200, path
        held.pop().close()  # its slot comes free when the next updates find it closed
        deadline = time.monotonic() + 5
        while True:
            s, line, _ = open_stream(w.port)
            if line == "HTTP/1.1 200 OK" or time.monotonic() > deadline:
                break
            s.close()
            time.sleep(0.2)
        held.append(s)
        assert line == "HTTP/1.1 200 OK", line
        assert w.stop() == 0
    finally:
        for s in held:
            s.close()
        w.close()


def test_requests_from_a_page_of_another_origin_are_refused(tmp_path):
    w = Watcher("-i", "1h", "tcp://127.0.0.1:1", db=tmp_path / "h.db")
    try:
        for path in ("/events", "/metrics", "/api/status", "/watch.js", "/"):
            for site in ("cross-site", "same-site"):
                st, h, body = w.get(path, headers={"Sec-Fetch-Site": site, "Sec-Fetch-Dest": "iframe",
                                                   "Sec-Fetch-Mode": "navigate"})
                assert st == 403 and h.get("Connection") == "close", (path, site, st, h)
                assert f"not a page of another origin (Sec-Fetch-Site: {site})".encode() in body, body
        # a link followed to the page (a top-level navigation) shows it; the page's own
        # requests are same-origin, and a request typed or scripted from outside is none
        st, _, body = w.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document",
                                          "Sec-Fetch-Mode": "navigate"})
        assert st == 200 and b"<table" in body
        for path in ("/events", "/metrics"):
            for site in ("same-origin", "none"):
                c = socket.create_connection(("127.0.0.1", w.port), timeout=5)
                c.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{w.port}\r\nSec-Fetch-Site: {site}\r\n"
                          f"Connection: close\r\n\r\n".encode())
                assert c.recv(64).startswith(b"HTTP/1.1 200 OK"), (path, site)
                c.close()
        assert w.stop() == 0
    finally:
        w.close()


FRAMES = 96  # more than WATCH_PAGE_CONNS: 6 per host name is Chromium's limit, so 16+ names


@pytest.mark.alone
def test_a_page_of_another_origin_cannot_hold_the_page_connections_in_chromium(svc, tmp_path):
    binary = chromium_binary()
    if not binary:
        pytest.fail("chromium is not installed; scripts/deps installs it (run it as root)")
    w = Watcher("-i", "1h", "tcp://127.0.0.1:1", db=tmp_path / "h.db")
    evil_p, = lease_ports(1)
    root = tmp_path / "evil"
    root.mkdir()
    # another origin on this machine (a dev server running someone's code, say): frames of
    # /events under many *.localhost names, which all reach 127.0.0.1 and pass the Host check
    (root / "evil.html").write_text("<!doctype html><body>" + "".join(
        f'<iframe src="http://h{i}.localhost:{w.port}/events"></iframe>' for i in range(FRAMES)) + "</body>")
    svc.python_http(evil_p, root=str(root))
    short = tempfile.mkdtemp(prefix="lkw-", dir="/tmp")
    browser = Chromium(binary, os.path.join(short, "chromium.log"))
    try:
        t = browser.call("Target.createTarget", {"url": "about:blank"}, timeout=30)
        sess = browser.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})["sessionId"]
        browser.call("Page.navigate", {"url": f"http://127.0.0.1:{evil_p}/evil.html"}, sess)
        deadline = time.monotonic() + 20
        while browser.evaluate(sess, "document.querySelectorAll('iframe').length") != FRAMES:
            assert time.monotonic() < deadline, "the page of another origin did not load"
            time.sleep(0.2)
        time.sleep(3)
        # the frames ask, are refused and end (unrefused, each would hold its stream)
        deadline = time.monotonic() + 25
        while True:
            held = subprocess.run(["ss", "-tnH", "state", "established", f"( dport = :{w.port} )"],
                                  capture_output=True, text=True, check=True).stdout.splitlines()
            if len(held) <= 8 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(held) <= 8, f"the page of another origin holds {len(held)} connections to the watcher"
        for _ in range(3):  # the page stays open in its tab meanwhile
            st, _, body = w.get("/metrics", timeout=5)
            assert st == 200 and b"loopkit_watch_targets 1" in body
            st, _, _ = w.get("/api/status", timeout=5)
            assert st == 200
            time.sleep(0.3)
        assert w.stop() == 0
    finally:
        browser.close()
        shutil.rmtree(short, ignore_errors=True)
        w.close()


def test_a_new_history_is_readable_by_its_user_only(tmp_path):
    db = tmp_path / "h.db"
    old = os.umask(0o022)  # the usual umask: SQLite alone would make the file 0644
    try:
        w = Watcher("-i", "200ms", "tcp://127.0.0.1:1", db=db)
    finally:
        os.umask(old)
    try:
        time.sleep(1.5)  # a batch: the -wal file is written
        for f in (db, tmp_path / "h.db-wal", tmp_path / "h.db-shm"):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
        assert w.stop() == 0
    finally:
        w.close()


def test_clients_that_never_read_metrics_hold_a_bounded_memory(tmp_path):
    """10,000 targets make /metrics about 4 MB: 56 clients that ask and never read held
    224 MB of answers (the page takes 64 connections). Answers made in memory now count against HTTP_MEM_MAX (64 MiB),
    as serve's /_/ answers do; past it a client gets 503 with Retry-After."""
    import json
    cfg = tmp_path / "many.json"
    cfg.write_text(json.dumps({"targets": [{"name": f"target-number-{i:05d}", "url": "tcp://127.0.0.1:1"}
                                           for i in range(10000)]}))
    w = Watcher("--config", cfg, "--interval", "3600", "--retries", "0", db=tmp_path / "h.db")
    try:
        st, _, body = w.get("/metrics", timeout=60)
        assert st == 200 and len(body) > 3 << 20, (st, len(body))
        before = proc_status_kb(w.pid, "VmRSS")
        held = []
        for _ in range(56):
            s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            held.append(s)
        time.sleep(3)
        peak = proc_status_kb(w.pid, "VmRSS")
        st, h, _ = w.get("/metrics", timeout=60)
        for s in held:
            s.close()
        assert st == 503 and h.get("Retry-After") == "1", (st, h)
        # A sanitizer build's RSS holds ASan's quarantine of freed blocks: the plain run measures.
        assert sanitizer_build() or peak - before < 100 << 10, f"RSS {before} -> {peak} KiB with 56 unread /metrics"
        # Once they are gone, /metrics answers again.
        deadline = time.monotonic() + 10
        while (st := w.get("/metrics", timeout=60)[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert st == 200
    finally:
        w.close()
