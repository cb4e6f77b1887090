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

from conftest import LOOPKIT, hard_timeout_fixture
from watchlab import Watcher, db_rows, run

_hard_timeout = hard_timeout_fixture(120)


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
