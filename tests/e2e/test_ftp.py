"""End-to-end tests of the FTP side of `loopkit serve` (issue 3, docs/ftp-spec.txt).

HTTP and FTP share one port; a connection that stays silent for --sniff-ms gets the FTP
greeting. Every test starts a real server (fixture `ftp_start` from conftest.py, which adds
--sniff-ms 50 to keep tests fast) and talks to it with real clients: curl (ftp://), Python's
ftplib, and raw sockets for hostile and edge cases. lftp tests are in test_ftp_lftp.py.

Every socket has a timeout, every subprocess a hard timeout, and every test a wall-clock
limit (SIGALRM), so a hung server fails a test instead of hanging the suite. Tests check
what the server did on disk (contents, checksums, leftover temporary files), not only its
replies.
"""
import ftplib
import hashlib
import http.client
import io
import os
import stat
import random
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import (free_port, CURL, FtpCtl, exchange, read_until_closed, snapshot, hard_timeout_fixture, httpc, proc_tcp_sockets, wait_for,
                      write_tree)

_hard_timeout = hard_timeout_fixture(20)

T = 5  # default socket timeout, seconds
RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER {on, 0}: close() sends a reset


# ============================================================== helpers


def sha(b):
    return hashlib.sha256(b).hexdigest()


def rbytes(n, seed=1):
    return random.Random(seed).randbytes(n)


def big_file(path, size, seed=7):
    """Writes `size` pseudo-random bytes (a 1 MiB block, each copy stamped with its index)."""
    block = rbytes(1 << 20, seed)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            chunk = (i.to_bytes(8, "big") + block[8:])[:left]
            f.write(chunk)
            left -= len(chunk)
            i += 1


def read(path):
    with open(path, "rb") as f:
        return f.read()


def temp_leftovers(top):
    """Temporary upload files (".NAME.lk-XXXXXX") anywhere under top."""
    return [rel for rel in snapshot(top) if ".lk-" in os.path.basename(rel)]


MTIME = 1735787045  # 2025-01-02 03:04:05 UTC
MTIME_FACT = "20250102030405"
UNAME = "ünï cødé-файл.txt"
QDIR = 'q"d'

TREE = {
    "hello.txt": b"hello ftp\n",
    "empty.bin": b"",
    "lines.txt": b"one\ntwo\nthree\n",
    "rand.bin": rbytes(70001, 2),
    "sub/": None,
    "sub/inner.txt": b"inner\n" * 100,
    "sub/deeper/": None,
    "sub/deeper/x.bin": rbytes(12345, 3),
    UNAME: "unicode content\n".encode(),
    QDIR + "/": None,
    QDIR + "/in-q.txt": b"quoted dir\n",
    ".hidden": b"dotfile secret\n",
    ".git/": None,
    ".git/config": b"[core]\n",
    "sub/.env": b"SECRET=1\n",
}
VISIBLE_TOP = {"hello.txt", "empty.bin", "lines.txt", "rand.bin", "sub", UNAME, QDIR}


@pytest.fixture
def tree(root):
    write_tree(root, TREE)
    os.utime(os.path.join(str(root), "hello.txt"), (MTIME, MTIME))
    return root


SECRET = b"TOPSECRET-OUTSIDE-THE-ROOT-4711\n"


@pytest.fixture
def escape_tree(tree, tmp_path):
    """tree plus a directory beside the root and symlinks leading out of (and within) it."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_bytes(SECRET)
    r = str(tree)
    os.symlink("../outside", os.path.join(r, "esc"))
    os.symlink(str(out), os.path.join(r, "escabs"))
    os.symlink("../outside/secret.txt", os.path.join(r, "secret-link.txt"))
    os.symlink("/etc/passwd", os.path.join(r, "passwd-link"))
    os.symlink("hello.txt", os.path.join(r, "in-link.txt"))
    os.symlink(os.path.join(r, "sub", "inner.txt"), os.path.join(r, "in-abs.txt"))
    return out


class Ctl(FtpCtl):
    """conftest's raw FTP control connection (RFC 959 multi-line replies, every line
    ending in CRLF) with this file's timeout and the passive and closing helpers."""

    def __init__(self, srv, timeout=T, source=None, greet=True, host=None):
        super().__init__(srv, timeout=timeout, greet=greet, source=source, host=host)

    def code(self, line):
        return self.cmd(line)[0]

    def final(self):
        """Replies up to and including the first non-1xx one."""
        out = []
        while True:
            r = self.reply()
            out.append(r)
            if r[0] >= 200:
                return out

    def peer(self):
        return self.sock.getpeername()[0]

    def pasv(self):
        c, t = self.cmd("PASV")
        assert c == 227, (c, t)
        m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", t)
        assert m, f"PASV reply without (h1,h2,h3,h4,p1,p2): {t!r}"
        n = [int(x) for x in m.groups()]
        return ".".join(map(str, n[:4])), n[4] * 256 + n[5]

    def epsv(self):
        c, t = self.cmd("EPSV")
        assert c == 229, (c, t)
        m = re.search(r"\(\|\|\|(\d+)\|\)", t)
        assert m, f"EPSV reply without (|||port|): {t!r}"
        return int(m.group(1))

    def open_data(self, mode="epsv", rcvbuf=None, source=None):
        if mode == "epsv":
            host, port = self.peer(), self.epsv()
        else:
            host, port = self.pasv()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        d = socket.socket(fam, socket.SOCK_STREAM)
        d.settimeout(T)
        if rcvbuf:
            d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            d.bind((source, 0))
        d.connect((host, port))
        return d

    def wait_closed(self, timeout=3):
        """True when the server closes the connection within timeout (pending bytes kept)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                b = self.sock.recv(65536)
                if not b:
                    return True
                self.buf += b
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False


def drain(sock, limit=None):
    """Reads a data connection to EOF (a reset counts as EOF)."""
    parts, n = [], 0
    while True:
        try:
            b = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not b:
            break
        parts.append(b)
        n += len(b)
        if limit is not None and n >= limit:
            break
    return b"".join(parts)


def xfer(ctl, command, mode="epsv", upload=None):
    """One data transfer over a passive connection: returns (first reply, data, final reply).
    On a refusal (no 1xx), first == final and data is b""."""
    d = ctl.open_data(mode)
    try:
        first = ctl.cmd(command)
        if first[0] not in (125, 150):
            return first, b"", first
        if upload is not None:
            try:
                d.sendall(upload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may stop reading (e.g. disk full)
            d.close()
            data = b""
        else:
            data = drain(d)
        return first, data, ctl.reply()
    finally:
        d.close()


def listing(ctl, command="LIST", mode="epsv"):
    first, data, final = xfer(ctl, command, mode)
    assert first[0] == 150 and final[0] == 226, (command, first, final)
    return data


def ftp(srv, user="anonymous", passwd="guest@example.com", timeout=T, cls=ftplib.FTP,
        host=None):
    """A logged-in ftplib client."""
    f = cls(timeout=timeout)
    f.connect(host or srv.host, srv.port)
    f.login(user, passwd)
    return f


def close_ftp(f):
    try:
        f.quit()
    except Exception:
        f.close()


def retr(f, path, rest=None):
    out = io.BytesIO()
    f.retrbinary("RETR " + path, out.write, rest=rest)
    return out.getvalue()


def curl_ftp(*args, timeout=15):
    cmd = [CURL, "-sS", "--max-time", str(timeout - 3)] + [str(a) for a in args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def sent_cmds(stderr):
    """FTP commands curl -v says it sent ("> CMD ...")."""
    return [ln[2:].strip() for ln in stderr.decode(errors="replace").splitlines()
            if ln.startswith("> ")]




LIST_RE = re.compile(r"^([-dl])[rwxsStT-]{9}\+?\s+\d+\s+\S+\s+\S+\s+(\d+)\s+"
                     r"[A-Z][a-z]{2}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s(.+)$")


def parse_list(data, crlf=True):
    """ls -l style listing (CRLF lines) -> {name: (kind, size)}. crlf=False for listings
    curl saved (curl turns CRLF into LF for its ASCII-mode listings)."""
    text = data.decode("utf-8")
    if not crlf:
        text = text.replace("\n", "\r\n")
    assert text == "" or text.endswith("\r\n"), f"listing not CRLF-terminated: {text[-80:]!r}"
    body = text[:-2] if text.endswith("\r\n") else text
    out = {}
    for ln in body.split("\r\n") if body else []:
        assert "\n" not in ln and "\r" not in ln, f"bare CR/LF in listing line {ln!r}"
        if ln.startswith("total "):
            continue
        m = LIST_RE.match(ln)
        assert m, f"listing line not in ls -l style: {ln!r}"
        name = m.group(3)
        if m.group(1) == "l" and " -> " in name:
            name = name.split(" -> ")[0]
        out[name] = (m.group(1), int(m.group(2)))
    return out


# ============================================================== startup, sniffing


def test_startup_prints_http_then_ftp_line_same_port(tree, ftp_start):
    srv = ftp_start()
    assert srv.lines == [f"http://127.0.0.1:{srv.port}/", f"ftp://127.0.0.1:{srv.port}/"], srv.lines
    assert srv.more_stdout(0.2) == ""


SO_TIMESTAMPNS = 35  # Linux (asm-generic/socket.h); Python's socket module lacks it


@pytest.mark.parametrize("sniff_ms", [None, 50, 300])
def test_greeting_arrives_after_sniff_window(tree, ftp_start, sniff_ms):
    # A client that is not itself waiting on the socket (this thread sleeps, neither
    # reading it nor busy) is unknown: the server waits the window, once. A client
    # blocked in recv() is greeted at once; test_sniff.py covers it. The kernel stamps
    # the greeting's arrival (SO_TIMESTAMPNS): a client that polled to time it would be
    # caught running now and then, and a running client gets more windows (it may be
    # about to send), which is a different rule.
    srv = ftp_start(sniff_ms=sniff_ms)
    window = (sniff_ms if sniff_ms is not None else 1000) / 1000
    s = srv.connect(timeout=window + 5)
    try:
        t0 = time.time()  # the kernel's stamps are on this clock
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        time.sleep(window + 0.7)
        got, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
    finally:
        s.close()
    stamps = [struct.unpack("qq", data[:16]) for lvl, typ, data in anc
              if (lvl, typ) == (socket.SOL_SOCKET, SO_TIMESTAMPNS)]
    assert got.startswith(b"220 ") and stamps, (got, anc)
    dt = stamps[0][0] + stamps[0][1] / 1e9 - t0
    assert dt >= window * 0.9, f"greeting after {dt:.3f} s, before the {window} s sniff window"
    assert dt <= window + 0.5, f"greeting only after {dt:.3f} s (window {window} s)"


def test_http_is_not_delayed_while_an_ftp_client_waits(tree, ftp_start):
    # One loop: with two, the HTTP client may simply land on the other loop.
    srv = ftp_start("--threads", "1", sniff_ms=400)
    silent = Ctl(srv, greet=False)
    t_silent = time.monotonic()
    t0 = time.monotonic()
    r = httpc(srv, "GET", "/hello.txt", timeout=3)
    dt = time.monotonic() - t0
    assert r.status == 200 and r.body == TREE["hello.txt"], r
    assert dt < 0.3, f"HTTP request took {dt:.3f} s (sniff window 0.4 s must not apply to it)"
    p = curl_ftp("-o", "-", srv.url + "sub/inner.txt")
    assert p.returncode == 0 and p.stdout == TREE["sub/inner.txt"], p.stderr
    code, text = silent.reply()
    waited = time.monotonic() - t_silent
    assert code == 220, text
    # Greeted once this thread reads the socket (a recheck sees it), at the latest
    # when the 400 ms window ends.
    assert waited <= 1.2, waited
    silent.login()
    assert silent.cmd("PWD")[0] == 257
    silent.close()


def test_http_request_split_in_two_packets_is_still_http(tree, ftp_start):
    srv = ftp_start(sniff_ms=200)
    s = srv.connect(timeout=3)
    s.sendall(b"GE")
    time.sleep(0.02)
    s.sendall(f"T /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
              "Connection: close\r\n\r\n".encode())
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert got.endswith(TREE["hello.txt"]), got[-100:]


def test_proto_http_never_greets(tree, ftp_start):
    srv = ftp_start("--proto", "http")
    assert srv.lines == [f"http://127.0.0.1:{srv.port}/"], srv.lines
    assert "ftp://" not in srv.more_stdout(0.3)
    s = srv.connect(timeout=0.7)
    t0 = time.monotonic()
    try:
        b = s.recv(100)
        pytest.fail(f"--proto http: silent client got {b!r} after {time.monotonic() - t0:.2f} s")
    except socket.timeout:
        pass
    s.settimeout(3)
    s.sendall(f"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
              "Connection: close\r\n\r\n".encode())
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(TREE["hello.txt"]), got[:300]


def test_proto_ftp_greets_at_once_and_prints_only_ftp_line(tree, ftp_start):
    srv = ftp_start("--proto", "ftp", sniff_ms=None)  # default window 200 ms must not apply
    assert srv.lines == [f"ftp://127.0.0.1:{srv.port}/"], srv.lines
    assert srv.url is None
    assert srv.more_stdout(0.3) == ""
    t0 = time.monotonic()
    c = Ctl(srv)
    dt = time.monotonic() - t0
    assert dt < 0.1, f"--proto ftp greeting took {dt:.3f} s"
    c.login()
    assert c.cmd("PWD")[1].startswith('257 "/"')
    c.close()
    f = ftp(srv)
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)


def client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl module)."""
    ctx = ssl.create_default_context()
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outg.read()
    assert hello[:2] == b"\x16\x03", hello[:10]
    return hello


def test_tls_client_hello_is_closed_and_logged(tree, ftp_start):
    srv = ftp_start()
    hello = client_hello()  # built first: loading the CA store can outlast the sniff window
    s = srv.connect(timeout=3)
    s.sendall(hello)
    closed, got = read_until_closed(s, 3)
    s.close()
    assert closed, f"connection left open after a TLS ClientHello; got {got!r}"
    assert b"220" not in got and b"HTTP/" not in got, got
    assert wait_for(lambda: "TLS" in srv.stderr(), 2), srv.stderr()
    # a real TLS client fails cleanly, and the server goes on serving both protocols
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw_s = srv.connect(timeout=3)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(raw_s, server_hostname="localhost").do_handshake()
    raw_s.close()
    assert httpc(srv, "GET", "/hello.txt").status == 200
    f = ftp(srv)
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)


@pytest.mark.parametrize("junk", [b"\x00\x01\x02\x03junk", b"hello there\r\n",
                                  b"\xff\xfb\x01\xff\xfd\x03"])
def test_unrecognised_first_bytes_are_closed_and_logged(tree, ftp_start, junk):
    srv = ftp_start()
    before = len(srv.stderr())
    s = srv.connect(timeout=3)
    s.sendall(junk)
    closed, got = read_until_closed(s, 3)
    s.close()
    assert closed, f"connection left open after {junk!r}; got {got!r}"
    assert b"220" not in got, got
    assert wait_for(lambda: len(srv.stderr()) > before, 2), "no log line for the closed connection"
    assert httpc(srv, "GET", "/hello.txt").status == 200


# ============================================================== login


def test_anonymous_login_any_user_any_password(tree, ftp_start):
    srv = ftp_start()
    for user, pw in [("anonymous", "a@b"), ("ftp", "x"), ("bob", "whatever"), ("anonymous", "")]:
        with Ctl(srv) as c:
            assert c.code(f"USER {user}") == 331, user
            code, text = c.cmd(f"PASS {pw}") if pw else c.cmd("PASS")
            assert code == 230, (user, pw, text)
            assert c.cmd("PWD")[1].startswith('257 "/"')
    f = ftp(srv)  # ftplib's default anonymous login
    assert "hello.txt" in f.nlst()
    close_ftp(f)


def test_user_login_required(tree, ftp_start):
    srv = ftp_start("--user", "alice:s3cret")
    f = ftp(srv, "alice", "s3cret")
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)
    for user, pw in [("alice", "wrong"), ("anonymous", "x@y"), ("bob", "s3cret"), ("alice", "")]:
        f = ftplib.FTP(timeout=T)
        f.connect(srv.host, srv.port)
        t0 = time.monotonic()
        with pytest.raises(ftplib.error_perm) as ei:
            f.login(user, pw)
        assert str(ei.value).startswith("530"), (user, pw, ei.value)
        assert time.monotonic() - t0 < 4.5
        # still not logged in: everything but the pre-login commands is refused
        with pytest.raises(ftplib.error_perm) as ei:
            f.sendcmd("PWD")
        assert str(ei.value).startswith("530"), ei.value
        f.close()
    # the right pair after a wrong one on the same connection
    with Ctl(srv) as c:
        c.cmd("USER alice")
        assert c.code("PASS nope") == 530
        c.cmd("USER alice")
        assert c.code("PASS s3cret") == 230


def test_curl_with_user(tree, ftp_start):
    srv = ftp_start("--user", "u:p")
    url = srv.ftp_url + "hello.txt"
    ok = curl_ftp("-u", "u:p", "-o", "-", url)
    assert ok.returncode == 0 and ok.stdout == TREE["hello.txt"], ok.stderr
    bad = curl_ftp("-u", "u:wrong", "-o", "-", url)
    assert bad.returncode == 67, (bad.returncode, bad.stderr)  # CURLE_LOGIN_DENIED
    anon = curl_ftp("-o", "-", url)
    assert anon.returncode == 67, (anon.returncode, anon.stderr)
    assert anon.stdout == b""


BEFORE_LOGIN_530 = ["PWD", "CWD sub", "CDUP", "LIST", "NLST", "MLSD", "MLST hello.txt",
                    "RETR hello.txt", "STOR x.txt", "APPE x.txt", "DELE hello.txt", "MKD d",
                    "RMD sub", "RNFR hello.txt", "RNTO y", "SIZE hello.txt", "MDTM hello.txt",
                    "REST 10", "PASV", "EPSV", "PORT 127,0,0,1,200,10",
                    "EPRT |1|127.0.0.1|51210|", "TYPE I", "MODE S", "STRU F", "STAT", "ABOR",
                    "XPWD", "XMKD d", "ALLO 10"]


def test_commands_before_login_get_530(tree, ftp_start):
    srv = ftp_start("--write")
    before = snapshot(tree)
    bad = []
    with Ctl(srv) as c:
        for line in BEFORE_LOGIN_530:
            code, text = c.cmd(line)
            if code != 530:
                bad.append((line, text))
        for line, want in [("NOOP", 200), ("SYST", 215), ("FEAT", 211), ("HELP", 214),
                           ("OPTS UTF8 ON", 200)]:
            code, text = c.cmd(line)
            if code != want:
                bad.append((line, text))
        code, text = c.cmd("AUTH TLS")  # not offered (yet), and says so: 502, not 530
        if code != 502 or "TLS is not offered" not in text:
            bad.append(("AUTH TLS", text))
        c.login()  # the session is still usable
        assert c.cmd("PWD")[0] == 257
    assert not bad, "before login, expected 530 (or the allowed command's code): " + repr(bad)
    assert snapshot(tree) == before


# ============================================================== command replies


def test_command_reply_codes(tree, ftp_start):
    srv = ftp_start()
    table = [
        ("SYST", 215), ("NOOP", 200), ("HELP", 214), ("OPTS UTF8 ON", 200),
        ("TYPE A", 200), ("TYPE I", 200), ("TYPE E", 504), ("TYPE X", 504),
        ("MODE S", 200), ("MODE B", 504), ("MODE C", 504),
        ("STRU F", 200), ("STRU R", 504), ("STRU P", 504),
        ("ALLO 1000", 202), ("STAT", 211),
        ("ACCT x", 502), ("SMNT /", 502), ("REIN", 502), ("STOU", 502), ("SITE CHMOD 777 x", 502),
        ("FROB", 500), ("XYZZY 1 2", 500),
        ("XPWD", 257), ("PWD", 257), ("REST 5", 350), ("TYPE I", 200),
        ("SIZE hello.txt", 213), ("SIZE sub", 550), ("SIZE nope", 550),
        ("MDTM hello.txt", 213), ("MDTM nope", 550),
        ("CWD nope", 550), ("CWD hello.txt", 550), ("CWD sub", 250), ("XCWD deeper", 250),
        ("XCUP", 250), ("CDUP", 250), ("CDUP", 250),
        ("noop", 200), ("Pwd", 257),
    ]
    bad = []
    with Ctl(srv) as c:
        c.login()
        for line, want in table:
            code, text = c.cmd(line)
            if code != want:
                bad.append((line, want, text))
        code, text = c.cmd("ABOR")  # nothing running: docs/serve.md says 225 (RFC 959 allows it)
        if code != 225:
            bad.append(("ABOR", 225, text))
        code, text = c.cmd("SYST")
        assert text == "215 UNIX Type: L8", text
        assert c.cmd("SIZE hello.txt")[1] == "213 " + str(len(TREE["hello.txt"]))
        assert c.cmd("MDTM hello.txt")[1] == "213 " + MTIME_FACT
        assert c.cmd("SIZE sub/deeper/x.bin")[1] == "213 12345"
        assert c.cmd("QUIT")[0] == 221
        assert c.wait_closed(3), "QUIT did not close the connection"
    assert not bad, "(command, expected, got): " + repr(bad)


def test_feat_lists_exactly_the_spec_features(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        code, text = c.cmd("FEAT")
        assert code == 211, text
        lines = text.split("\n")
        assert lines[0].startswith("211-") and lines[-1].startswith("211 "), lines
        feats = lines[1:-1]
        for ln in feats:
            assert ln.startswith(" ") and not ln.startswith("  "), f"feature line {ln!r}"
        got = {ln.strip() for ln in feats}
        want = {"EPRT", "EPSV", "MDTM", "MFMT", "MLST type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;", "PASV",
                "REST STREAM", "SIZE", "TVFS", "UTF8"}
        assert got == want, f"FEAT: missing {want - got}, extra {got - want}"


def test_epsv_all_then_other_data_commands_503(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        assert c.code("EPSV ALL") == 200
        assert c.code("PASV") == 503
        assert c.code("PORT 127,0,0,1,200,10") == 503
        assert c.code("EPRT |1|127.0.0.1|51210|") == 503
        assert listing(c, "NLST") != b""  # EPSV still works


@pytest.mark.parametrize("n", [2100, 3000])
def test_over_long_line_gets_500_and_session_continues(tree, ftp_start, n):
    """A line over 2048 bytes arriving whole (with its CRLF) in one segment."""
    srv = ftp_start()
    with Ctl(srv, timeout=2) as c:
        c.login()
        assert c.code("CWD " + "a/" * 700) == 550  # long but within the limit
        c.send(b"NOOP " + b"x" * n)
        code, text = c.reply()
        assert code == 500, text
        assert c.code("NOOP") == 200, "the command after an over-long line got no reply"
        assert c.cmd("PWD")[1].startswith('257 "/"')


def test_huge_line_in_pieces_gets_one_500_and_session_continues(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv, timeout=2) as c:
        c.login()
        # a hostile 200 KB line, sent in pieces
        for _ in range(20):
            c.sock.sendall(b"Y" * 10000)
        c.sock.sendall(b"\r\n")
        code, text = c.reply()
        assert code == 500, text
        assert c.code("NOOP") == 200, "more than one reply to one over-long line?"
        assert c.cmd("PWD")[1].startswith('257 "/"')
        assert listing(c, "NLST") != b""


def test_pipelined_and_split_commands(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        c.sock.sendall(b"NOOP\r\nCWD sub\r\nPWD\r\nCDUP\r\nSYST\r\n")
        assert [c.reply()[0] for _ in range(5)] == [200, 250, 257, 250, 215]
        for piece in (b"PW", b"D", b"\r", b"\n"):
            c.sock.sendall(piece)
            time.sleep(0.02)
        assert c.reply()[1].startswith('257 "/"')


def test_idle_session_gets_421_and_close(tree, ftp_start):
    srv = ftp_start("--ftp-idle-timeout", "1")
    with Ctl(srv) as c:
        c.login()
        for _ in range(2):  # activity keeps it open
            time.sleep(0.6)
            assert c.code("NOOP") == 200
        t0 = time.monotonic()
        code, text = c.reply()
        dt = time.monotonic() - t0
        assert code == 421, text
        assert 0.8 <= dt <= 3, dt
        assert c.wait_closed(2), "no close after 421"
    with Ctl(srv) as c:  # a session that never logs in is closed too
        t0 = time.monotonic()
        assert c.reply()[0] == 421
        assert c.wait_closed(2)
        assert time.monotonic() - t0 <= 3


# ============================================================== navigation, listings


def test_ftplib_cwd_pwd_cdup(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    assert f.pwd() == "/"
    f.cwd("sub")
    assert f.pwd() == "/sub"
    f.cwd("deeper")
    assert f.pwd() == "/sub/deeper"
    assert retr(f, "x.bin") == TREE["sub/deeper/x.bin"]
    f.cwd("..")  # ftplib sends CDUP
    assert f.pwd() == "/sub"
    f.sendcmd("CDUP")
    assert f.pwd() == "/"
    f.sendcmd("CDUP")  # at the root CDUP stays at the root
    assert f.pwd() == "/"
    f.cwd("/sub/deeper")
    assert f.pwd() == "/sub/deeper"
    f.cwd("/")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.cwd("missing")
    assert f.pwd() == "/"
    f.cwd(QDIR)  # 257 doubles an embedded quote (RFC 959); ftplib undoes it
    assert f.pwd() == "/" + QDIR
    assert retr(f, "in-q.txt") == TREE[QDIR + "/in-q.txt"]
    f.cwd("/")
    close_ftp(f)


def test_list_is_ls_style_crlf_and_hides_dotfiles(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        c.cmd("TYPE I")  # listings use CRLF whatever the type
        entries = parse_list(listing(c, "LIST"))
        assert set(entries) == VISIBLE_TOP, entries
        for name in VISIBLE_TOP:
            st = os.stat(os.path.join(str(tree), name))
            if os.path.isdir(os.path.join(str(tree), name)):
                assert entries[name][0] == "d", (name, entries[name])
            else:
                assert entries[name] == ("-", st.st_size), (name, entries[name])
        sub = parse_list(listing(c, "LIST sub"))
        assert set(sub) == {"inner.txt", "deeper"}, sub
        assert sub["inner.txt"] == ("-", 600)
        c.cmd("CWD sub")
        assert set(parse_list(listing(c, "LIST", mode="pasv"))) == {"inner.txt", "deeper"}


def test_nlst(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    assert set(f.nlst()) == VISIBLE_TOP
    names = f.nlst("sub")
    assert {os.path.basename(n) for n in names} == {"inner.txt", "deeper"}, names
    f.cwd("sub")
    assert set(f.nlst()) == {"inner.txt", "deeper"}
    close_ftp(f)


def test_mlsd_facts(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    got = dict(f.mlsd())
    assert set(got) == VISIBLE_TOP, got.keys()
    for name, facts in got.items():
        facts = {k.lower(): v for k, v in facts.items()}
        p = os.path.join(str(tree), name)
        st = os.stat(p)
        modify = time.strftime("%Y%m%d%H%M%S", time.gmtime(st.st_mtime))
        assert facts.get("modify", "")[:14] == modify, (name, facts)
        assert "perm" in facts, (name, facts)
        # ProFTPD's UNIX facts: lftp's mirror takes local modes from unix.mode
        assert facts.get("unix.mode") == "%04o" % (st.st_mode & 0o777), (name, facts)
        assert facts.get("unix.owner") == str(st.st_uid), (name, facts)
        assert facts.get("unix.group") == str(st.st_gid), (name, facts)
        if os.path.isdir(p):
            assert facts.get("type", "").lower() == "dir", (name, facts)
            assert "e" in facts["perm"] and "l" in facts["perm"], (name, facts)
        else:
            assert facts.get("type", "").lower() == "file", (name, facts)
            assert facts.get("size") == str(st.st_size), (name, facts)
            assert "r" in facts["perm"], (name, facts)
            assert "w" not in facts["perm"], f"read-only server offers w: {name} {facts}"
    assert got["hello.txt"]["modify"][:14] == MTIME_FACT
    deeper = dict(f.mlsd("sub/deeper"))
    assert set(deeper) == {"x.bin"} and deeper["x.bin"]["size"] == "12345", deeper
    # RFC 3659 7.2: MLSD of a file is 501 (MLST is the command for one file)
    with pytest.raises(ftplib.error_perm) as e:
        list(f.mlsd("hello.txt"))
    assert str(e.value) == "501 not a directory: MLSD lists directories, MLST describes a file"
    close_ftp(f)


def test_mlst_and_stat_over_control(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        code, text = c.cmd("MLST hello.txt")
        assert code == 250, text
        lines = text.split("\n")
        assert len(lines) >= 3 and lines[-1].startswith("250 "), lines
        fact = lines[1]
        assert fact.startswith(" ") and fact.endswith("hello.txt"), fact
        facts = dict(kv.split("=", 1) for kv in fact.strip().split(" ", 1)[0].split(";") if kv)
        facts = {k.lower(): v for k, v in facts.items()}
        assert facts["type"] == "file" and facts["size"] == str(len(TREE["hello.txt"])), facts
        assert facts["modify"][:14] == MTIME_FACT, facts
        assert c.code("MLST nope") == 550
        code, text = c.cmd("STAT")
        assert code == 211, text
        code, text = c.cmd("STAT sub")
        assert code == 213, text
        assert "inner.txt" in text and "deeper" in text, text
        code, text = c.cmd("STAT hello.txt")
        assert code == 213 and "hello.txt" in text, text


def test_utf8_names(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    f.sendcmd("OPTS UTF8 ON")
    assert UNAME in f.nlst()
    assert retr(f, UNAME) == TREE[UNAME]
    assert f.size(UNAME) == len(TREE[UNAME])
    close_ftp(f)


# ============================================================== downloads


def test_ftplib_retrbinary_checksums(tree, ftp_start):
    big_file(os.path.join(str(tree), "big.bin"), 8 << 20)
    srv = ftp_start()
    f = ftp(srv)
    for name in ["hello.txt", "empty.bin", "rand.bin", "sub/inner.txt", "sub/deeper/x.bin",
                 "big.bin"]:
        want = read(os.path.join(str(tree), name))
        assert sha(retr(f, name)) == sha(want), name
        assert f.size(name) == len(want), name
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr(f, "missing.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr(f, "sub")
    assert retr(f, "hello.txt") == TREE["hello.txt"]  # still fine after refusals
    close_ftp(f)


def test_rest_then_retr_resumes(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    data = TREE["rand.bin"]
    for off in (1, 1000, len(data) - 1, len(data)):
        assert retr(f, "rand.bin", rest=off) == data[off:], off
    assert retr(f, "rand.bin") == data  # REST applies to one transfer only
    close_ftp(f)


def test_type_a_sends_files_unchanged(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        assert c.code("TYPE A") == 200
        first, data, final = xfer(c, "RETR lines.txt")
        assert (first[0], final[0]) == (150, 226), (first, final)
        assert data == TREE["lines.txt"]


def test_symlinks_inside_root_are_followed(escape_tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    assert retr(f, "in-link.txt") == TREE["hello.txt"]
    assert retr(f, "in-abs.txt") == TREE["sub/inner.txt"]
    close_ftp(f)


def test_dotfiles_hidden_unless_dotfiles_flag(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv)
    for path in (".hidden", "sub/.env", ".git/config"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            retr(f, path)
        with pytest.raises(ftplib.error_perm, match="^550"):
            f.size(path)
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.cwd(".git")
    names = f.nlst() + f.nlst("sub") + [n for n, _ in f.mlsd("sub")]
    assert not [n for n in names if os.path.basename(n).startswith(".")], names
    close_ftp(f)
    srv2 = ftp_start("--dotfiles")
    f = ftp(srv2)
    assert retr(f, ".hidden") == TREE[".hidden"]
    assert ".hidden" in f.nlst()
    f.cwd(".git")
    assert retr(f, "config") == TREE[".git/config"]
    close_ftp(f)


# ============================================================== confinement


def assert_no_secret(data, what, names=False):
    """No outside content in data; with names=True (listings) no outside names either."""
    if isinstance(data, str):
        data = data.encode()
    assert SECRET.strip() not in data, f"{what} revealed outside content: {data[:300]!r}"
    assert b"root:x:0:0" not in data, f"{what} revealed /etc/passwd: {data[:300]!r}"
    if names:
        assert b"secret.txt" not in data, f"{what} listed an outside directory: {data[:300]!r}"


def test_escape_attempts_never_reveal_outside(escape_tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        for cwd in ("..", "../..", "/..", "../../..", "/../../"):
            code, text = c.cmd("CWD " + cwd)
            assert code == 250, (cwd, text)  # ".." of "/" is "/"
            assert c.cmd("PWD")[1].startswith('257 "/"'), (cwd, c.cmd("PWD"))
            top = parse_list(listing(c, "LIST"))
            assert "outside" not in top and "root" not in top, (cwd, top)
            assert "hello.txt" in top, (cwd, top)
            c.cmd("CWD /")
        for path in ("../outside/secret.txt", "../../etc/passwd", "/../outside/secret.txt",
                     "../../../../../etc/passwd", "/etc/passwd", "esc/secret.txt",
                     "escabs/secret.txt", "secret-link.txt", "passwd-link",
                     "..\\outside\\secret.txt", "sub/../../outside/secret.txt"):
            first, data, final = xfer(c, "RETR " + path)
            assert first[0] == 550, (path, first, final)
            assert_no_secret(data + first[1].encode() + final[1].encode(), "RETR " + path)
            for cmd in ("SIZE", "MDTM", "MLST", "STAT"):
                code, text = c.cmd(f"{cmd} {path}")
                assert code == 550, (cmd, path, text)
                assert_no_secret(text, f"{cmd} {path}")
        for d in ("esc", "escabs", "../outside", "/../outside"):
            assert c.code("CWD " + d) == 550, d
            assert c.cmd("PWD")[1].startswith('257 "/"')
            for lst in ("LIST", "NLST", "MLSD"):
                first, data, final = xfer(c, f"{lst} {d}")
                assert_no_secret(data + first[1].encode() + final[1].encode(), f"{lst} {d}",
                                 names=True)
            assert_no_secret(c.cmd("STAT " + d)[1], "STAT " + d, names=True)
        # listings of the root do not offer the links that lead out
        for lst in ("NLST", "MLSD"):
            names = listing(c, lst).decode()
            for link in ("esc", "escabs", "secret-link.txt", "passwd-link"):
                assert not re.search(r"(^|[ /;])" + re.escape(link) + r"\r?$", names, re.M), \
                    f"{lst} lists {link}, a symlink leading outside the root:\n{names}"


def test_writes_cannot_escape(escape_tree, ftp_start, tmp_path, root):
    srv = ftp_start("--write")
    before_out = snapshot(escape_tree)
    before_tmp = set(os.listdir(str(tmp_path)))
    f = ftp(srv)
    for path in ("esc/evil.txt", "escabs/evil.txt", "../outside/evil.txt", "../evil.txt",
                 "../../evil.txt", "secret-link.txt"):
        try:
            f.storbinary("STOR " + path, io.BytesIO(b"EVIL"))
        except ftplib.error_perm:
            pass
    for op in (lambda: f.mkd("esc/newdir"), lambda: f.mkd("../outside/newdir"),
               lambda: f.delete("esc/secret.txt"), lambda: f.delete("escabs/secret.txt"),
               lambda: f.rmd("esc"), lambda: f.rename("hello.txt", "esc/moved.txt"),
               lambda: f.rename("esc/secret.txt", "stolen.txt"),
               lambda: f.rename("hello.txt", "../outside/moved.txt"),
               lambda: f.storbinary("APPE secret-link.txt", io.BytesIO(b"EVIL"))):
        try:
            op()
        except ftplib.error_perm:
            pass
    close_ftp(f)
    assert snapshot(escape_tree) == before_out, "the directory outside the root changed"
    assert set(os.listdir(str(tmp_path))) == before_tmp, "something was created beside the root"
    for rel in snapshot(root):
        p = os.path.join(str(root), rel)
        if os.path.isfile(p) and not os.path.islink(p):
            assert SECRET not in read(p), f"outside content copied into the root as {rel}"


# ============================================================== writes refused without --write


def test_writes_refused_read_only(tree, ftp_start):
    srv = ftp_start()
    before = snapshot(tree)
    f = ftp(srv)
    ops = {
        "STOR": lambda: f.storbinary("STOR new.txt", io.BytesIO(b"x" * 1000)),
        "STOR over": lambda: f.storbinary("STOR hello.txt", io.BytesIO(b"x")),
        "APPE": lambda: f.storbinary("APPE hello.txt", io.BytesIO(b"x")),
        "DELE": lambda: f.delete("hello.txt"),
        "MKD": lambda: f.mkd("newdir"),
        "RMD": lambda: f.rmd("sub/deeper"),
        "RNFR": lambda: f.sendcmd("RNFR hello.txt"),
        "XMKD": lambda: f.sendcmd("XMKD newdir2"),
        "XRMD": lambda: f.sendcmd("XRMD sub/deeper"),
    }
    bad = []
    for name, op in ops.items():
        try:
            op()
            bad.append((name, "accepted"))
        except ftplib.error_perm as e:
            if not str(e).startswith("550") or "read-only" not in str(e).lower():
                bad.append((name, str(e)))
    assert f.nlst()  # session fine
    close_ftp(f)
    assert not bad, "expected 550 ... read-only: " + repr(bad)
    assert snapshot(tree) == before


def test_curl_upload_refused_read_only(tree, ftp_start, tmp_path):
    srv = ftp_start()
    src = tmp_path / "up.bin"
    src.write_bytes(b"upload" * 100)
    p = curl_ftp("-T", src, srv.ftp_url + "up.bin")
    assert p.returncode != 0, "curl upload succeeded without --write"
    assert b"550" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(str(tree), "up.bin"))
    assert not temp_leftovers(tree)


# ============================================================== writes with --write


@pytest.mark.parametrize("cmd, reply", [
    ("RETR hello.txt/", "550 not a directory"),
    ("SIZE hello.txt/", "550 not a directory"),
    ("MDTM hello.txt/", "550 not a directory"),
    ("MLST hello.txt/", "550 not a directory"),
    ("STAT hello.txt/", "550 not a directory"),
    ("LIST hello.txt/", "550 not a directory"),
    ("CWD hello.txt/", "550 not a directory"),
    ("DELE hello.txt/", "550 not a directory"),
    ("RNFR hello.txt/", "550 not a directory"),
    ("RNTO moved.txt/", "550 not a directory"),
    ("STOR new.txt/", "553 a file name is needed, not a directory"),
    ("APPE hello.txt/", "553 a file name is needed, not a directory"),
    # the last component "." names a directory too (a hostile pass found these)
    ("SIZE hello.txt/.", "550 not a directory"),
    ("DELE hello.txt/.", "550 not a directory"),
    ("DELE sub/../hello.txt/.", "550 not a directory"),
    ("MFMT 20000101000000 hello.txt/.", "550 not a directory"),
    ("RETR hello.txt/.", "550 not a directory"),
    ("LIST hello.txt/.", "550 not a directory"),
    ("NLST hello.txt/.", "550 not a directory"),
    ("MLSD hello.txt/.", "501 not a directory: MLSD lists directories, MLST describes a file"),
    ("RNFR hello.txt/.", "550 not a directory"),
    ("RNTO moved.txt/.", "550 not a directory"),
    ("STOR new.txt/.", "553 a file name is needed, not a directory"),
    ("APPE hello.txt/.", "553 a file name is needed, not a directory"),
])
def test_a_file_named_with_a_trailing_slash_is_refused_and_kept(tree, ftp_start, cmd, reply):
    """"hello.txt/" names a directory, as it does for open(2) and for HTTP (GET
    /hello.txt/ is a 404): every command refuses it, and the file is untouched (DELE
    hello.txt/ used to delete it)."""
    srv = ftp_start("--write")
    r = str(tree)
    before = sorted(os.listdir(r))
    f = ftp(srv)
    if cmd.startswith("RNTO"):
        assert f.sendcmd("RNFR hello.txt").startswith("350")
    with pytest.raises(ftplib.error_perm) as e:
        if cmd.startswith(("RETR", "LIST", "NLST", "MLSD")):
            f.retrbinary(cmd, lambda b: None)
        elif cmd.startswith(("STOR", "APPE")):
            f.storbinary(cmd, io.BytesIO(b"x"))
        else:
            f.sendcmd(cmd)
    assert str(e.value) == reply
    assert sorted(os.listdir(r)) == before
    assert read(os.path.join(r, "hello.txt")) == TREE["hello.txt"]
    # the directory form still works for a directory
    assert f.sendcmd("CWD sub/").startswith("250")
    f.quit()


@pytest.mark.parametrize("cmds", [["APPE pipe"], ["REST 1", "STOR pipe"], ["STOR pipe"], ["RETR pipe"]])
def test_a_fifo_in_the_tree_is_not_a_file_and_blocks_nothing(tree, ftp_start, cmds):
    """A FIFO in the served tree: APPE (and REST+STOR) opened it to copy its "content"
    and, with no writer, blocked the event loop for good (SIGTERM included). Every
    command now refuses it as not a plain file, the FIFO stays, and HTTP is served."""
    r = str(tree)
    os.mkfifo(os.path.join(r, "pipe"))
    srv = ftp_start("--write", "--threads", "1")
    f = ftp(srv)
    with pytest.raises(ftplib.error_perm) as e:
        for c in cmds:
            if c.startswith("REST"):
                f.sendcmd(c)
            elif c.startswith("RETR"):
                f.retrbinary(c, lambda b: None)
            else:
                f.storbinary(c, io.BytesIO(b"x"))
    assert str(e.value) == "550 not a plain file", e.value
    assert stat.S_ISFIFO(os.lstat(os.path.join(r, "pipe")).st_mode)
    resp = httpc(srv, "GET", "/hello.txt", timeout=5)
    assert (resp.status, resp.body) == (200, TREE["hello.txt"])
    f.quit()


def test_a_unix_socket_in_the_tree_is_not_a_plain_file_either(tree, ftp_start):
    """open(2) of a unix socket fails with ENXIO, which answered 451 / 500 input/output
    error; and MLST named a FIFO type=file, which a client would try to RETR."""
    import socket as so
    r = str(tree)
    s = so.socket(so.AF_UNIX)
    s.bind(os.path.join(r, "sock"))
    os.mkfifo(os.path.join(r, "pipe"))
    try:
        srv = ftp_start()
        f = ftp(srv)
        with pytest.raises(ftplib.error_perm) as e:
            f.retrbinary("RETR sock", lambda b: None)
        assert str(e.value) == "550 not a plain file"
        assert " type=OS.unix=fifo;" in f.sendcmd("MLST pipe")
        assert " type=OS.unix=socket;" in f.sendcmd("MLST sock")
        f.quit()
        for name in ("sock", "pipe"):
            resp = httpc(srv, "GET", "/" + name)
            assert (resp.status, resp.body) == (403, b"403 Forbidden: not a plain file\n"), resp
    finally:
        s.close()


@pytest.mark.parametrize("cmd", ["RMD dlnk", "RMD dlnk/", "RMD dlnk/."])
def test_rmd_of_a_symlink_to_a_directory_keeps_the_link(tree, ftp_start, cmd):
    """rmdir(2) of a symlink is ENOTDIR: RMD removed the link (a hostile pass)."""
    r = str(tree)
    os.mkdir(os.path.join(r, "d"))
    os.symlink("d", os.path.join(r, "dlnk"))
    srv = ftp_start("--write")
    f = ftp(srv)
    with pytest.raises(ftplib.error_perm) as e:
        f.sendcmd(cmd)
    assert str(e.value) == "550 not a directory"
    assert os.path.islink(os.path.join(r, "dlnk")) and os.path.isdir(os.path.join(r, "d"))
    f.quit()


def test_rename_to_a_hidden_name_says_why_and_a_fifo_lists_as_one(tree, ftp_start):
    r = str(tree)
    os.mkfifo(os.path.join(r, "pipe"))
    srv = ftp_start("--write")
    f = ftp(srv)
    assert f.sendcmd("RNFR hello.txt").startswith("350")
    with pytest.raises(ftplib.error_perm) as e:
        f.sendcmd("RNTO .secret")
    assert str(e.value) == "550 names starting with '.' are hidden (start with --dotfiles)"
    assert os.path.exists(os.path.join(r, "hello.txt")) and not os.path.exists(os.path.join(r, ".secret"))
    lines = []
    f.retrlines("LIST", lines.append)
    assert not [ln for ln in lines if ln.endswith(" pipe")], lines  # listings show files and dirs
    lines = []
    f.retrlines("LIST pipe", lines.append)  # named: its line says what it is, as ls -l
    assert len(lines) == 1 and lines[0].startswith("prw-") and lines[0].endswith(" pipe"), lines
    f.quit()


def test_ftplib_write_operations(tree, ftp_start):
    srv = ftp_start("--write")
    r = str(tree)
    f = ftp(srv)
    data = rbytes(300000, 11)
    assert f.storbinary("STOR new.bin", io.BytesIO(data)).startswith("226")
    assert read(os.path.join(r, "new.bin")) == data
    f.storbinary("STOR hello.txt", io.BytesIO(b"replaced\n"))
    assert read(os.path.join(r, "hello.txt")) == b"replaced\n"
    f.storbinary("STOR sub/deeper/n.txt", io.BytesIO(b"nested"))
    assert read(os.path.join(r, "sub/deeper/n.txt")) == b"nested"
    f.storbinary("STOR " + "neu-ü.txt", io.BytesIO(b"utf8"))
    assert read(os.path.join(r, "neu-ü.txt")) == b"utf8"
    f.storbinary("STOR empty-up.bin", io.BytesIO(b""))
    assert read(os.path.join(r, "empty-up.bin")) == b""
    # APPE
    f.storbinary("APPE lines.txt", io.BytesIO(b"four\n"))
    assert read(os.path.join(r, "lines.txt")) == TREE["lines.txt"] + b"four\n"
    f.storbinary("APPE fresh.txt", io.BytesIO(b"fresh"))
    assert read(os.path.join(r, "fresh.txt")) == b"fresh"
    # MKD / RMD
    assert f.mkd("made").endswith("made")
    assert os.path.isdir(os.path.join(r, "made"))
    f.mkd("made/inner")
    assert os.path.isdir(os.path.join(r, "made/inner"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.mkd("made")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.rmd("made")  # not empty
    assert os.path.isdir(os.path.join(r, "made/inner"))
    f.rmd("made/inner")
    f.rmd("made")
    assert not os.path.exists(os.path.join(r, "made"))
    # rename
    f.rename("new.bin", "renamed.bin")
    assert not os.path.exists(os.path.join(r, "new.bin"))
    assert read(os.path.join(r, "renamed.bin")) == data
    f.rename("renamed.bin", "sub/moved.bin")
    assert read(os.path.join(r, "sub/moved.bin")) == data
    f.rename("sub/deeper", "deeper2")
    assert os.path.isdir(os.path.join(r, "deeper2")) and not os.path.exists(os.path.join(r, "sub/deeper"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.sendcmd("RNFR missing.txt")
    with pytest.raises(ftplib.error_perm, match="^5"):
        f.sendcmd("RNTO nowhere.txt")  # no RNFR before
    assert not os.path.exists(os.path.join(r, "nowhere.txt"))
    # DELE
    f.delete("fresh.txt")
    assert not os.path.exists(os.path.join(r, "fresh.txt"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.delete("fresh.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.delete("sub")  # a directory
    assert os.path.isdir(os.path.join(r, "sub"))
    # refusals that must not create anything
    with pytest.raises(ftplib.error_perm, match="^55[03]"):  # 553: name not allowed
        f.storbinary("STOR nodir/x.txt", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.storbinary("STOR sub", io.BytesIO(b"x"))
    assert not os.path.exists(os.path.join(r, "nodir"))
    assert os.path.isdir(os.path.join(r, "sub"))
    # perm facts offer writes now
    facts = dict(f.mlsd())
    assert "w" in facts["hello.txt"]["perm"], facts["hello.txt"]
    close_ftp(f)
    assert not temp_leftovers(tree)


def test_dotfile_writes_refused_550(tree, ftp_start):
    srv = ftp_start("--write")
    r = str(tree)
    before = snapshot(tree)
    f = ftp(srv)
    bad = []
    for name, op in [("STOR .evil", lambda: f.storbinary("STOR .evil", io.BytesIO(b"x"))),
                     ("STOR sub/.env", lambda: f.storbinary("STOR sub/.env", io.BytesIO(b"x"))),
                     ("APPE .hidden", lambda: f.storbinary("APPE .hidden", io.BytesIO(b"x"))),
                     ("DELE .hidden", lambda: f.delete(".hidden")),
                     ("MKD .newdot", lambda: f.mkd(".newdot")),
                     ("RMD .git", lambda: f.rmd(".git")),
                     ("RNFR .hidden", lambda: f.sendcmd("RNFR .hidden")),
                     ("RNTO .x", lambda: (f.sendcmd("RNFR hello.txt"), f.sendcmd("RNTO .x")))]:
        try:
            op()
            bad.append((name, "accepted"))
        except ftplib.error_perm as e:
            if not str(e).startswith("550"):
                bad.append((name, str(e)))
    close_ftp(f)
    assert snapshot(tree) == before
    assert not bad, "dotfiles are hidden: expected 550 for " + repr(bad)
    srv2 = ftp_start("--write", "--dotfiles")
    f = ftp(srv2)
    f.storbinary("STOR .evil", io.BytesIO(b"now allowed"))
    close_ftp(f)
    assert read(os.path.join(r, ".evil")) == b"now allowed"


def test_rest_then_stor_keeps_first_n_bytes(tree, ftp_start):
    srv = ftp_start("--write")
    path = os.path.join(str(tree), "part.bin")
    old = rbytes(1000, 21)
    new = rbytes(200, 22)
    with open(path, "wb") as fh:
        fh.write(old)
    f = ftp(srv)
    f.storbinary("STOR part.bin", io.BytesIO(new), rest=300)
    assert read(path) == old[:300] + new
    f.storbinary("STOR part.bin", io.BytesIO(b"tail"), rest=500)
    assert read(path) == old[:300] + new + b"tail"
    f.storbinary("STOR part.bin", io.BytesIO(b"whole"))  # REST does not stick
    assert read(path) == b"whole"
    close_ftp(f)
    assert not temp_leftovers(tree)


def test_upload_in_progress_leaves_target_intact_until_done(tree, ftp_start):
    srv = ftp_start("--write")
    path = os.path.join(str(tree), "rand.bin")
    old = TREE["rand.bin"]
    new = rbytes(2 << 20, 31)
    with Ctl(srv) as c:
        c.login()
        d = c.open_data()
        assert c.cmd("STOR rand.bin")[0] == 150
        d.sendall(new[:1 << 20])
        time.sleep(0.2)
        assert read(path) == old, "target changed while the upload was still running"
        d.sendall(new[1 << 20:])
        d.close()
        assert c.reply()[0] == 226
    assert read(path) == new
    assert not temp_leftovers(tree)


def _start_partial_upload(srv, name, nbytes):
    c = Ctl(srv)
    c.login()
    d = c.open_data()
    assert c.cmd("STOR " + name)[0] == 150
    d.sendall(rbytes(nbytes, 41))
    time.sleep(0.2)
    return c, d


def test_aborted_stor_abor_keeps_old_file(tree, ftp_start):
    srv = ftp_start("--write")
    before = snapshot(tree)
    c, d = _start_partial_upload(srv, "rand.bin", 300000)
    c.send("ABOR")
    codes = [c.reply()[0]]
    if codes[0] == 426:
        codes.append(c.reply()[0])
    assert codes == [426, 226], f"ABOR during STOR: replies {codes}"
    d.close()
    assert c.code("NOOP") == 200
    c.close()
    assert wait_for(lambda: snapshot(tree) == before, 2), (snapshot(tree), before)
    # and for a new name: nothing is created
    c, d = _start_partial_upload(srv, "brand-new.bin", 300000)
    c.send("ABOR")
    codes = [c.reply()[0], c.reply()[0]]
    assert codes == [426, 226], f"ABOR during STOR of a new file: replies {codes}"
    d.close()
    c.close()
    assert wait_for(lambda: snapshot(tree) == before, 2), (snapshot(tree), before)


def test_aborted_stor_reset_data_keeps_old_file(tree, ftp_start):
    srv = ftp_start("--write")
    before = snapshot(tree)
    c, d = _start_partial_upload(srv, "rand.bin", 300000)
    d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
    d.close()  # RST, not FIN: the upload is broken, not complete
    code, text = c.reply()
    assert 400 <= code < 600, f"a reset upload was reported as {text!r}"
    assert c.code("NOOP") == 200
    c.close()
    assert wait_for(lambda: snapshot(tree) == before, 2), (snapshot(tree), before)


def test_aborted_stor_control_killed_keeps_old_file(tree, ftp_start):
    srv = ftp_start("--write")
    before = snapshot(tree)
    c, d = _start_partial_upload(srv, "rand.bin", 300000)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
    c.close()  # the session is gone
    closed, _ = read_until_closed(d, 2)  # the server should drop the data connection too
    d.close()
    assert wait_for(lambda: snapshot(tree) == before, 2), (snapshot(tree), before)
    assert closed, "data connection left open after the control connection died"
    f = ftp(srv)
    assert retr(f, "rand.bin") == TREE["rand.bin"]
    close_ftp(f)


def test_disk_full_stor_552_keeps_old_file(small_disk, ftp_start):
    mnt = small_disk
    keep = rbytes(100000, 51)
    (mnt / "keep.bin").write_bytes(keep)
    before = snapshot(mnt)
    srv = ftp_start("--write", root_dir=str(mnt))
    with Ctl(srv) as c:
        c.login()
        first, _, final = xfer(c, "STOR keep.bin", upload=rbytes(3 << 20, 52))
        assert first[0] == 150, first
        assert final[0] == 552, final
        assert c.code("NOOP") == 200
        first, _, final = xfer(c, "STOR small.txt", upload=b"fits")  # space freed again
        assert final[0] == 226, final
    assert read(str(mnt / "keep.bin")) == keep
    assert read(str(mnt / "small.txt")) == b"fits"
    after = snapshot(mnt)
    del after["small.txt"]
    assert after == before


# ============================================================== ABOR during RETR


def _running_retr(srv, size=24 << 20, timeout=3):
    """A session with a RETR of a 24 MiB file running; its data connection (64 KiB receive
    buffer) has been read a little and is then left alone, so the transfer stays stuck."""
    path = os.path.join(str(srv.root), "huge.bin")
    if not os.path.exists(path):
        big_file(path, size)
    c = Ctl(srv, timeout=timeout)
    c.login()
    d = c.open_data(rcvbuf=65536)
    assert c.cmd("RETR huge.bin")[0] == 150
    got = d.recv(65536)
    assert got
    time.sleep(0.1)
    return c, d


def _after_abort(c, d, size=24 << 20):
    d.settimeout(3)
    rest = drain(d)
    d.close()
    assert len(rest) < size - (1 << 20), "the whole file was sent despite ABOR"
    assert c.code("NOOP") == 200
    first, data, final = xfer(c, "RETR hello.txt")
    assert data == TREE["hello.txt"] and final[0] == 226, (first, final)


def test_abor_mid_retr(tree, ftp_start):
    srv = ftp_start()
    c, d = _running_retr(srv)
    c.send("ABOR")
    codes = [c.reply()[0]]
    if codes[0] == 426:
        codes.append(c.reply()[0])
    assert codes == [426, 226], f"ABOR during RETR: replies {codes}"
    _after_abort(c, d)
    c.close()


def test_abor_mid_retr_lftp_style_telnet_synch(tree, ftp_start):
    """lftp (ftp:use-telnet-iac) sends IAC IP, IAC DM with the DM as urgent data, then ABOR."""
    srv = ftp_start()
    c, d = _running_retr(srv)
    c.sock.sendall(b"\xff\xf4\xff")
    c.sock.send(b"\xf2", socket.MSG_OOB)
    c.sock.sendall(b"ABOR\r\n")
    codes = [c.reply()[0]]
    if codes[0] == 426:
        codes.append(c.reply()[0])
    assert codes == [426, 226], f"IAC IP IAC DM ABOR during RETR: replies {codes}"
    _after_abort(c, d)
    c.close()


def test_ftplib_abort_mid_retr(tree, ftp_start):
    """ftplib.FTP.abort() sends b'ABOR\\r\\n' with MSG_OOB (the LF is the urgent byte)."""
    srv = ftp_start()
    big_file(os.path.join(str(tree), "huge.bin"), 24 << 20)
    f = ftp(srv, timeout=3)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR huge.bin")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    assert conn.recv(65536)
    time.sleep(0.1)
    resp = f.abort()
    assert resp.startswith("426"), resp
    assert f.getresp().startswith("226")
    rest = drain(conn)
    conn.close()
    assert len(rest) < (23 << 20)
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)


def test_control_killed_mid_retr_server_survives(tree, ftp_start):
    srv = ftp_start()
    for kill_data in (False, True):
        c, d = _running_retr(srv)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
        c.close()
        if kill_data:
            d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
        else:
            drain(d)
        d.close()
    f = ftp(srv)
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)
    assert httpc(srv, "GET", "/hello.txt").status == 200


# ============================================================== passive and active mode


def test_pasv_and_epsv_replies(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        host, port = c.pasv()
        assert host == "127.0.0.1" and 1024 <= port <= 65535, (host, port)
        for mode in ("pasv", "epsv"):
            first, data, final = xfer(c, "RETR sub/inner.txt", mode)
            assert data == TREE["sub/inner.txt"], mode
            assert (first[0], final[0]) == (150, 226), (mode, first, final)


def test_pasv_binds_the_control_connections_local_address(tree, ftp_start):
    srv = ftp_start("--host", "127.0.0.3")
    assert srv.lines[1] == f"ftp://127.0.0.3:{srv.port}/", srv.lines
    with Ctl(srv) as c:
        c.login()
        host, port = c.pasv()
        assert host == "127.0.0.3", host
        # The server listens on that port on 127.0.0.3 alone. (Asked of its own sockets: a
        # connect to 127.0.0.1:port could reach another program's listener there.)
        assert [loc for loc, _, st in proc_tcp_sockets(srv.pid)
                if st == "LISTEN" and loc[1] == port] == [("127.0.0.3", port)]
        d = socket.create_connection(("127.0.0.3", port), timeout=T)
        assert c.cmd("RETR hello.txt")[0] == 150
        assert drain(d) == TREE["hello.txt"]
        d.close()
        assert c.reply()[0] == 226


def test_pasv_listener_accepts_once(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        host, port = c.pasv()
        d = socket.create_connection((host, port), timeout=T)
        # The listener closes as it accepts: while that connection waits for a command,
        # a second one is refused (the server's own sockets show no listener left).
        assert wait_for(lambda: not [1 for loc, _, st in proc_tcp_sockets(srv.pid)
                                     if st == "LISTEN" and loc[1] == port], 3), port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=2).close()
        assert c.cmd("RETR hello.txt")[0] == 150
        assert drain(d) == TREE["hello.txt"]
        d.close()
        assert c.reply()[0] == 226
        # ... and after the transfer: refused, and a transfer without a new PASV has no
        # data connection to use.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=2).close()
        code, text = c.cmd("RETR hello.txt")
        assert code == 425 and "PASV" in text, text


def test_pasv_ports_range(tree, ftp_start):
    port = free_port()
    srv = ftp_start("--pasv-ports", f"{port}-{port}")
    with Ctl(srv) as c:
        c.login()
        for mode in ("pasv", "epsv", "pasv"):
            got = c.pasv()[1] if mode == "pasv" else c.epsv()
            assert got == port, (mode, got, port)
            d = socket.create_connection(("127.0.0.1", port), timeout=T)
            assert c.cmd("RETR hello.txt")[0] == 150
            assert drain(d) == TREE["hello.txt"]
            d.close()
            assert c.reply()[0] == 226


def test_data_timeout_425(tree, ftp_start):
    srv = ftp_start("--data-timeout", "1")
    with Ctl(srv) as c:
        c.login()
        port = c.epsv()
        t0 = time.monotonic()
        c.send("RETR hello.txt")  # and never connect
        replies = c.final()
        dt = time.monotonic() - t0
        assert [r[0] for r in replies] == [150, 425], replies  # 150 at once, 425 in time
        assert 0.8 <= dt <= 3, dt
        s = socket.socket()
        s.settimeout(2)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))  # the listener is gone
        s.close()
        assert c.code("NOOP") == 200
        first, data, final = xfer(c, "RETR hello.txt")
        assert data == TREE["hello.txt"]


class IntruderFTP(ftplib.FTP):
    """ftplib client; before it connects its passive data connection, an intruder from
    127.0.0.2 connects to the same port (and sends `payload`)."""
    payload = b""

    def makepasv(self):
        host, port = super().makepasv()
        self.intruders = getattr(self, "intruders", [])
        s = socket.socket()
        s.settimeout(2)
        s.bind(("127.0.0.2", 0))
        s.connect((host, port))  # the listener is open: accepted, then closed by the server
        if self.payload:
            try:
                s.sendall(self.payload)
            except OSError:
                pass  # closed by the server before it all went: the refusal under test
        self.intruders.append(s)
        time.sleep(0.15)
        return host, port


def test_data_connection_from_other_address_refused_retr(tree, ftp_start):
    srv = ftp_start()
    f = ftp(srv, cls=IntruderFTP)
    assert retr(f, "rand.bin") == TREE["rand.bin"]
    assert f.nlst("sub")
    assert len(f.intruders) == 2  # one per transfer
    for s in f.intruders:
        closed, got = read_until_closed(s, 1)
        s.close()
        assert (closed, got) == (True, b""), f"the connection from 127.0.0.2: {len(got)} bytes"
    close_ftp(f)
    assert srv.stderr().count("refused a data connection from 127.0.0.2") == 2, srv.stderr()


def test_data_connection_from_other_address_refused_stor(tree, ftp_start):
    srv = ftp_start("--write")
    IntruderFTP.payload = b"INJECTED-BY-127.0.0.2" * 100
    try:
        f = ftp(srv, cls=IntruderFTP)
        good = rbytes(50000, 61)
        f.storbinary("STOR up.bin", io.BytesIO(good))
        for s in f.intruders:
            s.close()
        close_ftp(f)
    finally:
        IntruderFTP.payload = b""
    assert read(os.path.join(str(tree), "up.bin")) == good
    assert not temp_leftovers(tree)


def test_ftplib_active_mode(tree, ftp_start):
    srv = ftp_start("--write")
    f = ftp(srv)
    f.set_pasv(False)
    assert retr(f, "rand.bin") == TREE["rand.bin"]
    assert set(f.nlst()) == VISIBLE_TOP
    data = rbytes(100000, 71)
    f.storbinary("STOR act.bin", io.BytesIO(data))
    assert read(os.path.join(str(tree), "act.bin")) == data
    close_ftp(f)


def test_eprt_active_mode_raw(tree, ftp_start):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        lst = socket.socket()
        lst.settimeout(T)
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        port = lst.getsockname()[1]
        assert c.code(f"EPRT |1|127.0.0.1|{port}|") == 200
        c.send("RETR sub/inner.txt")
        d, addr = lst.accept()
        assert addr[0] == "127.0.0.1"
        assert c.reply()[0] == 150
        assert drain(d) == TREE["sub/inner.txt"]
        d.close()
        assert c.reply()[0] == 226
        lst.close()


@pytest.mark.parametrize("cmd", [
    "PORT 127,0,0,2,{p1},{p2}",
    "PORT 10,0,0,1,{p1},{p2}",
    "EPRT |1|127.0.0.2|{port}|",
    "EPRT |1|10.0.0.1|{port}|",
])
def test_bounce_refused(tree, ftp_start, cmd):
    srv = ftp_start()
    trap = socket.socket()  # nothing may connect here
    trap.bind(("127.0.0.2", 0))
    trap.listen(1)
    trap.settimeout(0.5)
    port = trap.getsockname()[1]
    line = cmd.format(p1=port // 256, p2=port % 256, port=port)
    with Ctl(srv) as c:
        c.login()
        code, text = c.cmd(line)
        assert code == 501, (line, text)
        code, text = c.cmd("LIST")
        assert code >= 400, f"LIST after a refused {line!r}: {text!r}"
        with pytest.raises(socket.timeout):
            trap.accept()
        assert c.code("NOOP") == 200
        assert listing(c, "NLST")  # passive still fine
    trap.close()


@pytest.mark.parametrize("line", ["PORT 1,2,3", "PORT 127,0,0,1,300,1", "PORT a,b,c,d,e,f",
                                  "EPRT garbage", "PORT"])
def test_malformed_port_501(tree, ftp_start, line):
    srv = ftp_start()
    with Ctl(srv) as c:
        c.login()
        code, text = c.cmd(line)
        assert code == 501, (line, text)
        assert c.code("NOOP") == 200


# ============================================================== curl


def test_curl_list_and_nlst(tree, ftp_start):
    srv = ftp_start()
    p = curl_ftp(srv.ftp_url)
    assert p.returncode == 0, p.stderr
    assert set(parse_list(p.stdout, crlf=False)) == VISIBLE_TOP
    p = curl_ftp("--list-only", srv.ftp_url)
    assert p.returncode == 0, p.stderr
    assert set(p.stdout.decode().split("\n")) - {""} == VISIBLE_TOP, p.stdout
    p = curl_ftp(srv.ftp_url + "sub/")
    assert p.returncode == 0, p.stderr
    assert set(parse_list(p.stdout, crlf=False)) == {"inner.txt", "deeper"}


@pytest.mark.parametrize("method", ["multicwd", "singlecwd", "nocwd"])
def test_curl_download(tree, ftp_start, method, tmp_path):
    big_file(os.path.join(str(tree), "sub", "big.bin"), 5 << 20)
    srv = ftp_start()
    out = tmp_path / "out.bin"
    p = curl_ftp("--ftp-method", method, "-o", out, srv.ftp_url + "sub/big.bin")
    assert p.returncode == 0, p.stderr
    assert sha(read(str(out))) == sha(read(os.path.join(str(tree), "sub", "big.bin")))
    p = curl_ftp("--ftp-method", method, "-o", "-", srv.ftp_url + urllib.parse.quote(UNAME))
    assert p.returncode == 0 and p.stdout == TREE[UNAME], p.stderr
    p = curl_ftp("--ftp-method", method, "-o", "-", srv.ftp_url + "sub/missing.txt")
    assert p.returncode == 78, (p.returncode, p.stderr)  # CURLE_REMOTE_FILE_NOT_FOUND


def test_curl_epsv_default_and_disable_epsv(tree, ftp_start):
    srv = ftp_start()
    p = curl_ftp("-v", "-o", "-", srv.ftp_url + "rand.bin")
    assert p.returncode == 0 and p.stdout == TREE["rand.bin"], p.stderr
    cmds = sent_cmds(p.stderr)
    assert "EPSV" in cmds and "PASV" not in cmds, cmds
    p = curl_ftp("-v", "--disable-epsv", "-o", "-", srv.ftp_url + "rand.bin")
    assert p.returncode == 0 and p.stdout == TREE["rand.bin"], p.stderr
    cmds = sent_cmds(p.stderr)
    assert "PASV" in cmds and "EPSV" not in cmds, cmds


def test_curl_active_mode(tree, ftp_start):
    srv = ftp_start()
    p = curl_ftp("-v", "-P", "127.0.0.1", "-o", "-", srv.ftp_url + "rand.bin")
    assert p.returncode == 0 and p.stdout == TREE["rand.bin"], p.stderr
    cmds = sent_cmds(p.stderr)
    assert any(c.startswith("EPRT |1|127.0.0.1|") for c in cmds), cmds
    p = curl_ftp("-v", "-P", "127.0.0.1", "--disable-eprt", "-o", "-", srv.ftp_url + "sub/")
    assert p.returncode == 0, p.stderr
    assert set(parse_list(p.stdout, crlf=False)) == {"inner.txt", "deeper"}
    cmds = sent_cmds(p.stderr)
    assert any(c.startswith("PORT 127,0,0,1,") for c in cmds), cmds


def test_curl_resume_download(tree, ftp_start, tmp_path):
    big_file(os.path.join(str(tree), "big.bin"), 3 << 20)
    want = read(os.path.join(str(tree), "big.bin"))
    srv = ftp_start()
    out = tmp_path / "partial.bin"
    out.write_bytes(want[:1000000])
    p = curl_ftp("-v", "-C", "-", "-o", out, srv.ftp_url + "big.bin")
    assert p.returncode == 0, p.stderr
    assert "REST 1000000" in sent_cmds(p.stderr), sent_cmds(p.stderr)
    assert sha(read(str(out))) == sha(want)


def test_curl_upload(tree, ftp_start, tmp_path):
    srv = ftp_start("--write")
    src = tmp_path / "up.bin"
    data = rbytes(1 << 20, 81)
    src.write_bytes(data)
    p = curl_ftp("-T", src, srv.ftp_url + "up.bin")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(str(tree), "up.bin")) == data
    src.write_bytes(b"second version\n")
    p = curl_ftp("-T", src, srv.ftp_url + "up.bin")  # replace
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(str(tree), "up.bin")) == b"second version\n"
    p = curl_ftp("-T", src, "--append", srv.ftp_url + "up.bin")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(str(tree), "up.bin")) == b"second version\n" * 2
    p = curl_ftp("-T", src, "--ftp-create-dirs", srv.ftp_url + "new/dir/up.txt")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(str(tree), "new", "dir", "up.txt")) == b"second version\n"
    p = curl_ftp("-T", src, "--disable-epsv", srv.ftp_url + "sub/viapasv.txt")
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(str(tree), "sub", "viapasv.txt")) == b"second version\n"
    assert not temp_leftovers(tree)


# ============================================================== mixed, concurrency


def test_mixed_http_and_ftp_clients_at_once(tree, ftp_start, tmp_path):
    big_file(os.path.join(str(tree), "big.bin"), 4 << 20)
    srv = ftp_start("--write")
    r = str(tree)
    files = ["hello.txt", "rand.bin", "sub/inner.txt", "sub/deeper/x.bin", "big.bin"]
    want = {n: read(os.path.join(r, n)) for n in files}
    errors = []
    barrier = threading.Barrier(9, timeout=10)

    def http_worker(i):
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=T)
        barrier.wait()
        for rep in range(3):
            for n in files:
                conn.request("GET", "/" + n)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or body != want[n]:
                    errors.append(("http", i, n, resp.status, len(body)))
        conn.close()

    def ftp_worker(i):
        f = ftp(srv)
        barrier.wait()
        for n in files:
            if retr(f, n) != want[n]:
                errors.append(("ftp retr", i, n))
        data = rbytes(200000 + i, 90 + i)
        f.storbinary(f"STOR up-{i}.bin", io.BytesIO(data))
        if read(os.path.join(r, f"up-{i}.bin")) != data:
            errors.append(("ftp stor", i))
        close_ftp(f)

    def curl_worker(i):
        out = tmp_path / f"c{i}.bin"
        barrier.wait()
        url = (srv.url if i % 2 else srv.ftp_url) + "big.bin"
        p = curl_ftp("-o", out, url)
        if p.returncode != 0 or read(str(out)) != want["big.bin"]:
            errors.append(("curl", url, p.returncode, p.stderr))

    def guard(fn, *a):
        try:
            fn(*a)
        except Exception as e:  # noqa: BLE001
            errors.append((fn.__name__, a, repr(e)))

    threads = ([threading.Thread(target=guard, args=(http_worker, i)) for i in range(3)]
               + [threading.Thread(target=guard, args=(ftp_worker, i)) for i in range(4)]
               + [threading.Thread(target=guard, args=(curl_worker, i)) for i in range(2)])
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(15)
    assert not [t for t in threads if t.is_alive()], "clients still running after 15 s"
    assert not errors, errors
    assert not temp_leftovers(tree)


def test_stalled_data_connection_does_not_stall_others(tree, ftp_start):
    big_file(os.path.join(str(tree), "huge.bin"), 24 << 20)
    big_file(os.path.join(str(tree), "mid.bin"), 2 << 20, seed=9)
    srv = ftp_start("--threads", "1")  # one loop: the others must share it with the stall
    c, d = _running_retr(srv)  # data connection not read any more
    t0 = time.monotonic()
    r = httpc(srv, "GET", "/mid.bin", timeout=3)
    assert r.status == 200 and r.body == read(os.path.join(str(tree), "mid.bin"))
    f = ftp(srv, timeout=3)
    assert retr(f, "mid.bin") == read(os.path.join(str(tree), "mid.bin"))
    close_ftp(f)
    assert time.monotonic() - t0 < 2, "other clients were slowed by a stalled FTP transfer"
    c.send("ABOR")
    c.final()
    d.close()
    c.close()


def test_many_sessions_dropped_without_quit(tree, ftp_start):
    srv = ftp_start()
    socks = [Ctl(srv, greet=False) for _ in range(30)]
    for i, c in enumerate(socks):
        assert c.reply()[0] == 220
        c.login()
        if i % 3 == 0:
            c.epsv()
    for c in socks:
        c.close()
    f = ftp(srv)
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)
    assert exchange(srv, "GET", "/hello.txt").status == 200


def test_ipv6(tree, ftp_start):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = ftp_start("--host", "::1")
    assert srv.lines == [f"http://[::1]:{srv.port}/", f"ftp://[::1]:{srv.port}/"], srv.lines
    f = ftp(srv)  # ftplib uses EPSV on IPv6
    assert retr(f, "rand.bin") == TREE["rand.bin"]
    f.set_pasv(False)  # EPRT |2|::1|port|
    assert set(f.nlst()) == VISIBLE_TOP
    close_ftp(f)
    p = curl_ftp("-g", "-o", "-", srv.ftp_url + "hello.txt")
    assert p.returncode == 0 and p.stdout == TREE["hello.txt"], p.stderr


def test_http_client_greeted_as_ftp_is_told_why(tree, ftp_start):
    # A client that reads before it writes is greeted at once; when an HTTP request
    # line then arrives, the session closes and the log names the rule and the fix (a
    # longer window would change nothing; test_sniff.py has the silent-past-the-window
    # case, whose fix is --sniff-ms).
    srv = ftp_start(sniff_ms=50)
    s = srv.connect(timeout=3)
    got = b""
    while b"\r\n" not in got:
        b = s.recv(4096)
        assert b, got
        got += b
    assert got.startswith(b"220 "), got
    s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    closed, rest = read_until_closed(s, 3)
    s.close()
    assert closed, rest
    assert b"HTTP/1.1" not in rest, rest
    assert wait_for(lambda: "start with --proto http to serve it" in srv.stderr(), 2), srv.stderr()
    assert "since it waits for the server to speak" in srv.stderr() and "raise --sniff-ms" not in srv.stderr()
    assert httpc(srv, "GET", "/hello.txt").status == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_pasv_data_connection_from_another_user_is_refused(tree, ftp_start):
    # Every local user connects from 127.0.0.1: only the socket's owner tells them
    # apart. A process of another user that races to the PASV port gets nothing.
    srv = ftp_start()
    f = ftp(srv)
    host, port = f.makepasv()
    pid = os.fork()
    if pid == 0:  # the other user: connect and report what it read
        try:
            os.setgid(65534)
            os.setuid(65534)
            t = socket.create_connection((host, port), timeout=3)
            t.settimeout(3)
            got = t.recv(100)
            os._exit(0 if got == b"" else 1)  # closed at once, nothing sent
        except socket.timeout:
            os._exit(1)  # kept open: taken as the session's data connection
        except Exception:  # noqa: BLE001 - reported through the exit status
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, "another user's connection was given data"
    # The session's own client still gets its file through a fresh PASV.
    assert retr(f, "hello.txt") == TREE["hello.txt"]
    close_ftp(f)
    assert wait_for(lambda: "another user's socket" in srv.stderr(), 2), srv.stderr()


def test_big_file_copied_to_a_loopback_client_is_exact_from_every_offset(tree, ftp_start):
    """A file of 64 KiB or more goes to a loopback client copied through memory, read
    128 KiB at a time and sent 32 KiB at a time (core/filesend.h): REST at and around
    those boundaries, and the whole file, are the file's bytes."""
    data = rbytes((1 << 20) + 12345, seed=11)
    (tree / "copied.bin").write_bytes(data)
    srv = ftp_start()
    f = ftp(srv)
    for off in (0, 1, 32767, 32768, 131071, 131072, 131073, 500000, len(data) - 65536, len(data) - 1):
        got = retr(f, "copied.bin", rest=off)
        assert len(got) == len(data) - off and sha(got) == sha(data[off:]), off
    close_ftp(f)


def test_file_cut_short_under_a_copied_retr_fails_the_transfer(tree, ftp_start):
    """The file shrinks while a copied RETR sends it: the client gets 451 "the file shrank
    during the transfer" and fewer bytes than the 150 announced, never 226 or made-up
    bytes; the session goes on."""
    big = tree / "shrinks.bin"
    big.write_bytes(rbytes(16 << 20, seed=3))
    srv = ftp_start()
    ctl = Ctl(srv)
    ctl.login()
    d = ctl.epsv_data(rcvbuf=65536)  # the server cannot queue the whole file in the kernel
    try:
        first = ctl.cmd("RETR shrinks.bin")
        assert first[0] == 150 and str(16 << 20) in first[1], first
        head = d.recv(65536)  # the transfer has begun; the client reads slowly
        assert head
        os.truncate(big, 200000)
        rest = drain(d)
    finally:
        d.close()
    final = ctl.reply()
    assert final[0] == 451 and "shrank" in final[1], final
    assert len(head) + len(rest) < 16 << 20
    assert ctl.code("NOOP") == 200
    ctl.close()


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_commands_sent_during_a_transfer_run_as_sent_after_it(tree, ftp_start, eol):
    """Commands that arrive while a RETR runs wait for its end and then run as they were
    sent. They were parsed twice, and the first parse had rewritten the line in place:
    a pipelined REST became '501 NUL bytes' (the next RETR then sent the file from byte
    0), and a line ending in a bare LF lost it and merged with the next one."""
    data = rbytes(4 << 20, seed=5)
    (tree / "pipe.bin").write_bytes(data)
    srv = ftp_start()
    ctl = Ctl(srv)
    ctl.login()
    assert ctl.code("TYPE I") == 200
    d = ctl.epsv_data(rcvbuf=65536)
    first = ctl.cmd("RETR pipe.bin")
    assert first[0] == 150, first
    head = d.recv(1000)
    ctl.sock.sendall(f"REST 65537{eol}NOOP{eol}SIZE pipe.bin{eol}EPSV{eol}".encode())
    rest = drain(d)
    d.close()
    assert head + rest == data
    assert ctl.reply()[0] == 226
    assert ctl.reply()[0] == 350
    assert ctl.reply()[0] == 200
    assert ctl.reply() == (213, f"213 {len(data)}")
    code, text = ctl.reply()
    assert code == 229, text
    port = int(re.search(r"\(\|\|\|(\d+)\|\)", text).group(1))
    d = socket.create_connection((srv.host, port), timeout=5)
    first = ctl.cmd("RETR pipe.bin")
    assert first[0] == 150 and str(len(data) - 65537) in first[1], first
    assert drain(d) == data[65537:]
    d.close()
    assert ctl.reply()[0] == 226
    ctl.close()
