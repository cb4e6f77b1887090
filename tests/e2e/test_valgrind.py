"""`loopkit serve` under valgrind's memcheck (issue 6, "Sanitizers"): a short run that handles
HTTP and FTP traffic (including cut-off transfers, bad requests and a refused bounce) and is
then stopped with SIGTERM must exit 0, with no memory errors and no definite or indirect
leaks. The binary is the normal build (no sanitizer; an ASan build cannot run under valgrind,
so the test skips there and the plain `make test` run covers it). It takes about 10-20 s.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import conftest
from conftest import (Conn, FtpCtl, FtpServer, exchange, hard_timeout_fixture, loopkit_wrapper,
                      need_tool, reqbytes, reset_close)

_hard_timeout = hard_timeout_fixture(90)

VALGRIND = shutil.which("valgrind")
# Larger than a loopback socket's send buffer (4 MiB at most) and the client's 64 KiB
# receive buffer together, so an ABOR always lands mid-transfer.
BIG = 16 << 20


def _ftp_xfer(c, command, upload=None):
    d = c.epsv_data()
    code, text = c.cmd(command)
    if code != 150:
        d.close()
        return code, b""
    if upload is not None:
        d.sendall(upload)
        d.close()
        data = b""
    else:
        data = b""
        while True:
            b = d.recv(65536)
            if not b:
                break
            data += b
        d.close()
    return c.reply()[0], data


def _traffic_core(srv):
    """Traffic that needs no file access (API endpoints, bad requests, FTP control)."""
    r = exchange(srv, "POST", "/_/anything?x=1&x=2", {"Content-Type": "application/json"},
                 b'{"a":[1,2,{"b":"<c>"}]}', timeout=10)
    assert r.status == 200 and r.json()["json"] == {"a": [1, 2, {"b": "<c>"}]}
    for path, status in (("/_/get?a=b", 200), ("/_/headers", 200), ("/_/uuid", 200),
                         ("/_/bytes/100000?seed=3", 200),
                         ("/_/stream-bytes/50000?chunk_size=999", 200), ("/_/redirect/2", 302),
                         ("/_/base64/aGk=", 200), ("/_/cookies/set?k=v", 302),
                         ("/_/etag/x", 200), ("/_/cache/5", 200), ("/_/status/418", 418),
                         ("/_/response-headers?X-A=1&X-A=2", 200), ("/_/nosuch", 404),
                         ("/_/redirect-to?url=//x", 400)):
        assert exchange(srv, "GET", path, timeout=10).status == status, path
    with Conn(srv, timeout=10) as c:  # chunked body, then pipelined requests
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
               b"\r\n3;ext=1\r\nabc\r\n0\r\nX-T: y\r\n\r\n"
               + reqbytes(srv, "GET", "/_/ip") + reqbytes(srv, "GET", "/_/health"))
        assert c.response().json()["data"] == "abc"
        assert c.response().status == 200
        assert c.response().status == 200
    for bad in (b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n", b"GET /\x01 HTTP/1.1\r\n\r\n",
                b"\x16\x03\x01\x00\x05hello", b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"GET / HTTP/1.1\r\nX: " + b"a" * 20000,
                b"GET /_/get HTTP/1.1\r\nHost: evil.example\r\n\r\n"):
        with Conn(srv, timeout=10) as c:
            c.send(bad)
            c.wait_closed(3)
    with Conn(srv, timeout=10) as c:  # a response cut off
        c.request("GET", "/_/bytes/5000000")
        c.sock.recv(10000)
        reset_close(c.sock)
        c.sock = None
    with Conn(srv, timeout=10) as c:  # a request body cut off
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nxx")
        time.sleep(0.1)
        reset_close(c.sock)
        c.sock = None
    with FtpCtl(srv, timeout=10) as c:
        assert c.cmd("PWD")[0] == 530
        c.login()
        for cmd, code in (("SYST", 215), ("FEAT", 211), ("HELP", 214), ("NOOP", 200),
                          ("FOO", 500), ("EPRT |1|127.0.0.2|2000|", 501),  # not the peer
                          ("PORT 10,0,0,1,7,208", 501), ("RETR " + "x" * 3000, 500),  # too long
                          ("PASV", 227), ("EPSV", 229), ("REST 5", 350), ("TYPE X", 504),
                          ("SITE X", 502), ("RNTO x", 503), ("STAT", 211)):
            assert c.cmd(cmd)[0] == code, cmd[:40]
        assert c.cmd("QUIT")[0] == 221
    s = socket.create_connection((srv.host, srv.port), timeout=10)  # greeted, then dropped
    assert s.recv(100).startswith(b"220")
    s.close()


def _traffic_files(srv, root):
    """Traffic that opens files and directories (openat2)."""
    assert exchange(srv, "GET", "/a.txt", timeout=10).body == b"hello\n"
    assert exchange(srv, "GET", "/", timeout=10).status == 200
    assert exchange(srv, "GET", "/d/", {"Accept": "application/json"}, timeout=10).status == 200
    assert exchange(srv, "GET", "/d", timeout=10).status == 301
    r = exchange(srv, "GET", "/big.bin", {"Range": "bytes=10-99"}, timeout=10)
    assert r.status == 206 and len(r.body) == 90
    etag = exchange(srv, "HEAD", "/a.txt", timeout=10).header("etag")
    assert exchange(srv, "GET", "/a.txt", {"If-None-Match": etag}, timeout=10).status == 304
    assert exchange(srv, "GET", "/missing", timeout=10).status == 404
    assert exchange(srv, "PUT", "/up.txt", body=b"uploaded", timeout=10).status == 201
    with Conn(srv, timeout=10) as c:  # chunked PUT, then pipelined GETs on one connection
        c.send(b"PUT /up2.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3;ext=1\r\nabc\r\n0\r\nX-T: y\r\n\r\n"
               + reqbytes(srv, "GET", "/up2.txt") + reqbytes(srv, "GET", "/a.txt"))
        assert c.response().status == 201
        assert c.response().body == b"abc"
        assert c.response().body == b"hello\n"
    assert exchange(srv, "DELETE", "/up2.txt", timeout=10).status == 204
    with Conn(srv, timeout=10) as c:  # a download cut off
        c.request("GET", "/big.bin")
        c.sock.recv(10000)
        reset_close(c.sock)
        c.sock = None
    with Conn(srv, timeout=10) as c:  # an upload cut off
        c.send(b"PUT /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nxx")
        time.sleep(0.1)
        reset_close(c.sock)
        c.sock = None
    # ---- FTP
    with FtpCtl(srv, timeout=10) as c:
        c.login()
        for cmd, code in (("SYST", 215), ("FEAT", 211), ("PWD", 257), ("TYPE I", 200),
                          ("SIZE a.txt", 213), ("MDTM a.txt", 213), ("MLST a.txt", 250),
                          ("STAT /", 213), ("HELP", 214), ("NOOP", 200), ("CWD d", 250),
                          ("CDUP", 250), ("FOO", 500), ("EPRT |1|127.0.0.2|2000|", 501),
                          ("RETR " + "x" * 3000, 500)):
            assert c.cmd(cmd)[0] == code, cmd[:40]
        assert _ftp_xfer(c, "LIST")[0] == 226
        assert _ftp_xfer(c, "MLSD d")[0] == 226
        assert _ftp_xfer(c, "NLST")[0] == 226
        assert _ftp_xfer(c, "RETR big.bin")[1] == (root / "big.bin").read_bytes()
        assert c.cmd("REST 100")[0] == 350
        assert len(_ftp_xfer(c, "RETR big.bin")[1]) == BIG - 100
        assert _ftp_xfer(c, "STOR f.bin", upload=os.urandom(300000))[0] == 226
        assert _ftp_xfer(c, "APPE f.bin", upload=b"more")[0] == 226
        assert c.cmd("RNFR f.bin")[0] == 350 and c.cmd("RNTO g.bin")[0] == 250
        assert c.cmd("MKD nd")[0] == 257 and c.cmd("RMD nd")[0] == 250
        assert c.cmd("DELE g.bin")[0] == 250
        d = c.epsv_data(rcvbuf=65536)  # ABOR mid-transfer: BIG is far over the buffers
        assert c.cmd("RETR big.bin")[0] == 150
        d.recv(1000)
        c.send("ABOR")
        c.send("NOOP")
        codes = [c.reply()[0] for _ in range(3)]
        assert codes == [426, 226, 200], codes
        d.close()
        assert c.cmd("QUIT")[0] == 221
    c = FtpCtl(srv, timeout=10)  # a session dropped mid-STOR, without QUIT
    c.login()
    d = c.epsv_data()
    assert c.cmd("STOR h.bin")[0] == 150
    d.sendall(b"partial")
    reset_close(c.sock)
    reset_close(d)
    time.sleep(0.3)


def _openat2_missing(srv, vlog):
    """True when file requests fail under this valgrind (it lacks openat2, syscall 437,
    and the fallback did not take over)."""
    r = exchange(srv, "GET", "/a.txt", timeout=10)
    if r.status == 200:
        return False
    text = vlog.read_text(errors="replace") if vlog.exists() else ""
    assert "syscall: 437" in text, f"GET /a.txt under valgrind: {r!r}\n{text[-3000:]}"
    return True


def _is_sanitizer_build(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.mark.alone
@pytest.mark.skipif(_is_sanitizer_build(conftest.LOOPKIT),
                    reason="an ASan build cannot run under valgrind; the plain `make test` "
                           "run of this test covers it")
def test_serve_under_valgrind_no_errors_no_leaks(root, tmp_path, monkeypatch, capsys):
    need_tool("valgrind", "valgrind")
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "d").mkdir()
    (root / "d" / "x.txt").write_bytes(b"x")
    vlog = tmp_path / "valgrind.log"
    monkeypatch.setattr(conftest, "LOOPKIT", loopkit_wrapper(
        tmp_path, VALGRIND, "--quiet", "--leak-check=full", "--error-exitcode=99",
        "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
        "--track-fds=no", f"--log-file={vlog}"))
    t0 = time.monotonic()
    srv = FtpServer(str(root), ["--write", "--threads", "2", "--sniff-ms", "100",
                                "--grace", "2"], startup_timeout=30)
    files = False
    try:
        exe = os.readlink(f"/proc/{srv.pid}/exe")
        assert os.path.basename(exe).startswith("memcheck-"), f"not under valgrind: {exe}"
        _traffic_core(srv)
        # valgrind 3.19 lacks openat2: loopkit's fallback walk (fsroot_walk_beneath)
        # must then serve files, so file traffic is checked under memcheck too.
        assert not _openat2_missing(srv, vlog), "file requests fail under valgrind"
        _traffic_files(srv, root)
        files = True
        idle = FtpCtl(srv, timeout=10).login()  # an FTP session still open at SIGTERM
        keep = Conn(srv, timeout=10)  # and an HTTP keep-alive connection
        keep.request("GET", "/_/health")
        assert keep.response().status == 200
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(45)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
            raise AssertionError("loopkit under valgrind did not exit after SIGTERM")
        keep.close()
        idle.close()
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
        log = srv.stderr()
        srv.stop()
    report = vlog.read_text(errors="replace") if vlog.exists() else "(no valgrind log)"
    report = "\n".join(ln for ln in report.splitlines()  # valgrind's own openat2 notice
                        if "syscall: 437" not in ln and "README_MISSING_SYSCALL" not in ln
                        and "Nevertheless we consider" not in ln and "bug_reports" not in ln
                        and "your own handler" not in ln)
    took = time.monotonic() - t0
    assert rc == 0, f"exit status {rc} under valgrind ({took:.1f} s):\n{report[-6000:]}\n" \
                    f"server log:\n{log[-2000:]}"
    assert not re.search(r"(definitely|indirectly) lost: [1-9]", report), report[-6000:]
    assert "Invalid " not in report and "uninitialised" not in report, report[-6000:]
    assert "POST /_/anything" in log, log[-2000:]
    if files:
        assert "PUT /up.txt" in log and "RETR /big.bin" in log, log[-2000:]
        assert sorted(os.listdir(root)) == ["a.txt", "big.bin", "d", "up.txt"], os.listdir(root)
