"""Every bad input and limit of docs/serve-spec.txt, sent over raw sockets. After each
bad request the test checks that the server still answers the next client."""
import os
import socket
import threading
import time

import pytest

from conftest import (Conn, assert_alive, exchange, hard_timeout_fixture, parse_responses,
                      raw, reqbytes, wait_for)

_hard_timeout = hard_timeout_fixture(20)

FILE = b"file content\n"


@pytest.fixture
def site(root):
    (root / "a.txt").write_bytes(FILE)
    return root


def one(server, data, method="GET", timeout=5):
    """Sends data on a fresh connection and reads exactly one response."""
    with Conn(server, timeout) as c:
        c.send(data)
        return c.response(method)


def closing(server, data, timeout=5):
    """Sends data; expects exactly one response and then the server closing."""
    got = raw(server, data, timeout=timeout)  # socket.timeout here: server did not close
    rs = parse_responses(got)
    assert len(rs) == 1, f"expected one response then close, got {got[:600]!r}"
    return rs[0]


def assert_close_error(r, status):
    assert r.status == status, r
    assert r.closes(), f"{status} without Connection: close: {r.headers}"
    assert r.header("content-type", "").startswith("text/plain"), r.headers
    assert r.header("x-content-type-options") == "nosniff"
    assert r.body.strip(), "error body should name the cause"


# --- head limits ------------------------------------------------------------------------

def test_head_over_16k_is_431(server, site):
    req = reqbytes(server, "GET", "/a.txt", {"X-Big": "a" * 17000})
    r = one(server, req)
    assert r.status == 431, r
    assert_alive(server)


def test_head_just_under_16k_is_fine(server, site):
    base = len(reqbytes(server, "GET", "/a.txt", {"X-Big": ""}))
    req = reqbytes(server, "GET", "/a.txt", {"X-Big": "a" * (16 * 1024 - base - 10)})
    assert len(req) < 16 * 1024
    r = one(server, req)
    assert (r.status, r.body) == (200, FILE), r


def test_many_small_headers_over_16k_is_431(server, site):
    # 90 headers of 200 bytes: under the header-count limit, over the size limit.
    hs = [(f"X-H{i}", "v" * 200) for i in range(90)]
    r = one(server, reqbytes(server, "GET", "/a.txt", hs))
    assert r.status == 431, r
    assert_alive(server)


def test_target_over_8k_is_414(server, site):
    target = "/x?" + "a" * (8 * 1024 - 3 + 1)  # 8193 bytes
    assert len(target) == 8193
    r = one(server, reqbytes(server, "GET", target))
    assert r.status == 414, r
    assert_alive(server)


def test_target_of_8k_is_accepted(server, site):
    target = "/a.txt?" + "a" * (8 * 1024 - 7)  # exactly 8192 bytes: query ignored for files
    assert len(target) == 8192
    r = one(server, reqbytes(server, "GET", target))
    assert (r.status, r.body) == (200, FILE), r


def test_over_100_headers_is_431(server, site):
    hs = [(f"X-H{i}", "v") for i in range(100)]  # + Host = 101 fields
    r = one(server, reqbytes(server, "GET", "/a.txt", hs))
    assert r.status == 431, r
    assert_alive(server)


def test_100_headers_is_fine(server, site):
    hs = [(f"X-H{i}", "v") for i in range(99)]  # + Host = 100 fields
    r = one(server, reqbytes(server, "GET", "/a.txt", hs))
    assert (r.status, r.body) == (200, FILE), r


# --- malformed requests: 400 and close --------------------------------------------------------

def test_cl_and_te_is_400_and_close(server, site):
    req = (b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
           b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")  # must not be answered
    r = closing(server, req)
    assert_close_error(r, 400)
    assert_alive(server)


@pytest.mark.parametrize("line", [
    b"GARBAGE",
    b"GET /a.txt",
    b"GET  /a.txt HTTP/1.1",
    b"GET /a.txt HTTP/1.1 extra",
    b"GET /a.txt HTTPS/1.1",
    b"GET /a\x01b HTTP/1.1",
    b"GET /a\x7fb HTTP/1.1",
    b"G(T /a.txt HTTP/1.1",
    b" GET /a.txt HTTP/1.1",
], ids=lambda b: b.decode("latin-1").encode("unicode_escape").decode())
def test_malformed_request_line_is_400_and_close(server, site, line):
    r = closing(server, line + b"\r\nHost: localhost\r\n\r\n")
    assert_close_error(r, 400)
    assert_alive(server)


@pytest.mark.parametrize("head", [
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-A: b\rc\r\n\r\n",          # bare CR in value
    b"GET /a.txt HTTP/1.1\rHost: localhost\r\n\r\n",                          # bare CR line end
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n  folded\r\n\r\n",  # obs-fold
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-A: b\x00c\r\n\r\n",         # NUL in value
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-\x00A: b\r\n\r\n",          # NUL in name
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-A : b\r\n\r\n",             # space before :
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n",
    b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-A: b\x07c\r\n\r\n",         # control byte
], ids=["bare-cr-value", "bare-cr-eol", "obs-fold", "nul-value", "nul-name",
        "space-before-colon", "no-colon", "ctl-value"])
def test_bad_header_is_400_and_close(server, site, head):
    r = closing(server, head)
    assert_close_error(r, 400)
    assert_alive(server)


def test_bad_content_length_is_400(server, site):
    for cl in (b"abc", b"-1", b"5, 6", b"+5", b"0x5"):
        r = closing(server, b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Length: " + cl + b"\r\n\r\nhello")
        assert_close_error(r, 400)
    assert_alive(server)


def test_unknown_transfer_encoding_rejected(server, site):
    r = closing(server, b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\n"
                        b"Transfer-Encoding: gzip\r\n\r\nxx")
    assert_close_error(r, 501)  # docs/serve.md: a coding other than chunked
    assert_alive(server)


def test_bad_chunk_size_is_400(server, site):
    req = (b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"zz\r\nhello\r\n0\r\n\r\n")
    r = closing(server, req)
    assert_close_error(r, 400)
    assert_alive(server)


def test_chunk_without_crlf_is_400(server, site):
    req = (b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nhelloXX\r\n0\r\n\r\n")
    r = closing(server, req)
    assert_close_error(r, 400)
    assert_alive(server)


def test_http2_is_505(server, site):
    for v in (b"HTTP/2.0", b"HTTP/3.0"):
        r = one(server, b"GET /a.txt " + v + b"\r\nHost: localhost\r\n\r\n")
        assert r.status == 505, (v, r)
    assert_alive(server)


def test_h2_preface_does_not_kill_server(server, site):
    got = raw(server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", timeout=3, read_until_close=False)
    rs = parse_responses(got)
    assert [r.status for r in rs] == [505], got  # an HTTP/2 preface is HTTP/2.0: 505
    assert rs[0].closes(), got
    assert_alive(server)


def test_unknown_method_is_501(server, site):
    r = one(server, reqbytes(server, "BREW", "/a.txt"))
    assert r.status == 501, r
    assert_alive(server)


def test_overlong_method_is_501(server, site):
    r = one(server, reqbytes(server, "X" * 40, "/a.txt"))
    assert r.status == 501, r
    assert_alive(server)


def test_expect_other_than_100_continue_is_417(server, site):
    r = one(server, reqbytes(server, "POST", "/_/anything", {"Expect": "202-accepted"},
                             body=b"hi"))
    assert r.status == 417, r
    assert_alive(server)


# --- 405 ---------------------------------------------------------------------------------------

def allow_set(r):
    return {t.upper() for t in r.tokens("allow")}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_post_on_file_is_405_with_allow(server, site, method):
    r = one(server, reqbytes(server, method, "/a.txt", body=b"data"))
    assert r.status == 405, r
    assert allow_set(r) == {"GET", "HEAD", "OPTIONS"}, r.headers
    assert (site / "a.txt").read_bytes() == FILE
    assert_alive(server)


def test_post_on_file_with_write_is_405(start, site):
    s = start("--write")
    r = one(s, reqbytes(s, "POST", "/a.txt", body=b"data"))
    assert r.status == 405, r
    assert {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"} <= allow_set(r), r.headers
    assert "POST" not in allow_set(r)
    assert (site / "a.txt").read_bytes() == FILE


@pytest.mark.parametrize("method,body", [("PUT", b"new content"), ("DELETE", None),
                                         ("PUT", None)])
def test_put_delete_without_write_is_405(server, site, method, body):
    for path in ("/a.txt", "/new.txt"):
        r = one(server, reqbytes(server, method, path, body=body))
        assert r.status == 405, (path, r)
        assert allow_set(r) == {"GET", "HEAD", "OPTIONS"}, r.headers
    assert (site / "a.txt").read_bytes() == FILE
    assert not (site / "new.txt").exists()
    assert_alive(server)


# --- bodies too large ----------------------------------------------------------------------------

def test_put_over_max_body_is_413(start, root):
    s = start("--max-body", "1K", "--write")
    r = one(s, reqbytes(s, "PUT", "/big.bin", body=b"x" * 2048))
    assert r.status == 413, r
    assert not (root / "big.bin").exists()
    assert [n for n in os.listdir(root)] == [], "temp file left behind"
    assert_alive(s)
    r = one(s, reqbytes(s, "PUT", "/ok.bin", body=b"y" * 1024))
    assert r.status == 201, r
    assert (root / "ok.bin").read_bytes() == b"y" * 1024


def test_put_chunked_over_max_body_is_413(start, root):
    s = start("--max-body", "1K", "--write")
    chunk = b"400\r\n" + b"z" * 1024 + b"\r\n"
    req = (b"PUT /big.bin HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
           + chunk + chunk + b"0\r\n\r\n")
    r = one(s, req)
    assert r.status == 413, r
    assert not (root / "big.bin").exists()
    assert_alive(s)


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


def test_anything_body_over_1mib_is_413(server):
    body = b"b" * (1024 * 1024 + 1)
    with Conn(server, timeout=5) as c:
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        t = threading.Thread(target=_send_quietly, args=(c.sock, body), daemon=True)
        t.start()
        r = c.response()
        assert r.status == 413, r
        t.join(5)
    assert_alive(server)


def test_anything_body_of_1mib_is_accepted(server):
    body = b"c" * (1024 * 1024)
    with Conn(server, timeout=10) as c:
        c.send(reqbytes(server, "POST", "/_/anything", body=body))
        r = c.response()
        assert r.status == 200, r
        assert r.json()["data"] == body.decode()


# --- Host header --------------------------------------------------------------------------------

def test_missing_host_on_http11_is_400(server, site):
    r = one(server, b"GET /a.txt HTTP/1.1\r\n\r\n")
    assert r.status == 400, r
    assert_alive(server)


def test_missing_host_on_http10_is_fine(server, site):
    r = one(server, b"GET /a.txt HTTP/1.0\r\n\r\n")
    assert (r.status, r.body) == (200, FILE), r


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "evil.example:{port}",
                                  "localhost.evil.example:{port}", "evillocalhost",
                                  "myapp.test", "127.0.0.1.nip.io"])
def test_foreign_host_is_403(server, site, host):
    r = one(server, reqbytes(server, "GET", "/a.txt", {"Host": host.format(port=server.port)}))
    assert r.status == 403, (host, r)
    assert FILE not in r.body
    assert_alive(server)


@pytest.mark.parametrize("host", ["localhost", "localhost:{port}", "foo.localhost",
                                  "foo.localhost:{port}", "127.0.0.1", "127.0.0.1:{port}",
                                  "[::1]:{port}", "[::1]"])
def test_allowed_hosts(server, site, host):
    r = one(server, reqbytes(server, "GET", "/a.txt", {"Host": host.format(port=server.port)}))
    assert (r.status, r.body) == (200, FILE), (host, r)


def test_allow_host_flag(start, site):
    s = start("--allow-host", "myapp.test", "--allow-host", "other.test")
    for host in ("myapp.test", f"myapp.test:{s.port}", "MyApp.Test", "other.test", "localhost"):
        r = one(s, reqbytes(s, "GET", "/a.txt", {"Host": host}))
        assert (r.status, r.body) == (200, FILE), (host, r)
    for host in ("evil.example", "sub.myapp.test", "myapp.test.evil.example"):
        r = one(s, reqbytes(s, "GET", "/a.txt", {"Host": host}))
        assert r.status == 403, (host, r)
    assert_alive(s)


def test_allow_host_star_disables_check(start, site):
    s = start("--allow-host", "*")
    r = one(s, reqbytes(s, "GET", "/a.txt", {"Host": "evil.example"}))
    assert (r.status, r.body) == (200, FILE), r


# --- timeouts -------------------------------------------------------------------------------------

def test_slow_head_gets_408_and_close(start, site):
    s = start("--head-timeout", "1")
    with Conn(s, timeout=5) as c:
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: loc")
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        elapsed = time.monotonic() - t0
        assert closed, f"not closed within 5 s, got {got!r}"
        assert 0.7 <= elapsed <= 3.2, elapsed
        rs = parse_responses(got)
        assert len(rs) == 1 and rs[0].status == 408, got
        assert rs[0].closes()
    assert_alive(s)


def test_trickled_head_still_gets_408(start, site):
    # Slowloris: one byte every 0.2 s must not keep extending the deadline.
    s = start("--head-timeout", "1")
    head = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100
    with Conn(s, timeout=5) as c:
        t0 = time.monotonic()
        got = b""
        i = 0
        while time.monotonic() - t0 < 4:
            if i < len(head):
                try:
                    c.send(head[i:i + 1])
                except OSError:
                    break
                i += 1
            c.sock.settimeout(0.2)
            try:
                d = c.sock.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not d:
                break
            got += d
        elapsed = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.1 408"), (elapsed, got)
        assert elapsed <= 3.2, elapsed
    assert_alive(s)


def test_silent_connection_is_closed_after_head_timeout(start, site):
    # With FTP on, silence means FTP (see test_ftp.py); HTTP alone times it out.
    s = start("--head-timeout", "1", "--proto", "http")
    with Conn(s, timeout=5) as c:
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        elapsed = time.monotonic() - t0
        assert closed, "a connection that never sent anything was kept open"
        assert 0.7 <= elapsed <= 3.2, elapsed
        assert got == b"", got  # docs/serve.md: with --proto http silence simply times out
    assert_alive(s)


def test_idle_keepalive_closed_silently(start, site):
    s = start("--idle-timeout", "1")
    with Conn(s, timeout=5) as c:
        c.request("GET", "/a.txt")
        r = c.response()
        assert (r.status, r.body) == (200, FILE)
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        elapsed = time.monotonic() - t0
        assert closed, "idle connection not closed"
        assert got == b"", f"idle close should be silent, got {got!r}"
        assert 0.7 <= elapsed <= 3.2, elapsed
    assert_alive(s)


def test_active_keepalive_not_closed_by_idle_timeout(start, site):
    s = start("--idle-timeout", "1")
    with Conn(s, timeout=5) as c:
        for _ in range(5):  # 2 s of activity in total, 0.4 s gaps
            c.request("GET", "/a.txt")
            assert c.response().body == FILE
            time.sleep(0.4)


def test_slow_body_times_out(start):
    s = start("--body-timeout", "1")
    with Conn(s, timeout=5) as c:
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc")
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        assert closed, "stalled body kept open"
        assert time.monotonic() - t0 <= 3.2
        rs = parse_responses(got)
        assert [r.status for r in rs] == [408], got  # docs/serve.md: 408, close
        assert rs[0].closes(), got
    assert_alive(s)


# --- --max-conns ----------------------------------------------------------------------------------

def test_max_conns(start, site):
    s = start("--max-conns", "5")
    conns = []
    try:
        for _ in range(5):
            c = Conn(s, timeout=5)
            c.request("GET", "/a.txt")
            assert c.response().body == FILE
            conns.append(c)
        with Conn(s, timeout=3) as sixth:
            closed, got = sixth.wait_closed(3)
            assert closed, f"6th connection not closed, got {got!r}"
            assert got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got
            head = Conn(data=got).response("HEAD")
            assert head.header("retry-after") == "1", head.headers
            assert head.closes()
            assert head.header("x-content-type-options") == "nosniff", head.headers
            rs = parse_responses(got)
            assert len(rs) == 1, f"503 body does not match its Content-Length: {got!r}"
        for c in conns:  # existing connections unaffected
            c.request("GET", "/a.txt")
            r = c.response()
            assert (r.status, r.body) == (200, FILE)
        # Free one slot: a new client is served again.
        conns.pop().close()

        def served():
            try:
                r = exchange(s, "GET", "/a.txt", timeout=2)
                return r.status == 200
            except (OSError, EOFError):
                return False
        deadline = time.monotonic() + 3
        while not served():
            assert time.monotonic() < deadline, "slot not freed after a client left"
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
    time.sleep(0.2)
    assert_alive(s)


# --- more framing and header edge cases -----------------------------------------------------------

def test_two_different_content_lengths_is_400(server, site):
    r = closing(server, b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
                        b"Content-Length: 5\r\n\r\nhello")
    assert_close_error(r, 400)
    assert_alive(server)


def test_duplicate_host_is_400(server, site):
    # RFC 9112 3.2: more than one Host field -> 400 (and no way round the Host check).
    r = one(server, b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n")
    assert r.status == 400, r
    r = one(server, b"GET /a.txt HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n\r\n")
    assert r.status == 400, r  # the order of the two fields changes nothing
    assert_alive(server)


def test_absolute_form_with_foreign_authority_not_served(server, site):
    r = one(server, b"GET http://evil.example/a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert r.status == 403, r  # RFC 9112 3.2.2: the target's authority is the host: foreign
    assert FILE not in r.body
    assert_alive(server)


def test_expect_100_with_oversized_put_gets_413(start, root):
    s = start("--max-body", "1K", "--write")
    with Conn(s, timeout=3) as c:
        c.send(b"PUT /x.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.response()
        if r.status == 100:  # allowed, though a final status could be sent right away
            c.send(b"x" * 5000)
            r = c.final_response()
        assert r.status == 413, r
    assert not (root / "x.bin").exists()
    assert_alive(s)


@pytest.mark.parametrize("target", ["/" + "a" * 300, "/" + "/".join(["b" * 200] * 30),
                                    "/a.txt/", "/a.txt/x"])
def test_long_or_odd_paths_are_404(server, site, target):
    r = one(server, reqbytes(server, "GET", target))
    # A name over NAME_MAX or a path over PATH_MAX cannot exist: 404, or 414 naming it.
    want = (404, 414) if len(target) > 255 else (404,)
    assert r.status in want, (target[:50], r)
    assert_alive(server)


def test_percent_encoded_slash_is_a_separator(server, site):
    (site / "sub").mkdir()
    (site / "sub" / "x.txt").write_bytes(b"in sub")
    r = one(server, reqbytes(server, "GET", "/sub%2fx.txt"))
    assert (r.status, r.body) == (200, b"in sub"), r


def test_lowercase_method_is_501(server, site):
    r = one(server, b"get /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert r.status == 501, r
    assert_alive(server)


def test_foreign_host_on_http10_is_403(server, site):
    r = one(server, b"GET /a.txt HTTP/1.0\r\nHost: evil.example\r\n\r\n")
    assert r.status == 403, r


def test_any_port_allowed_on_allowed_host(server, site):
    r = one(server, reqbytes(server, "GET", "/a.txt", {"Host": "localhost:1"}))
    assert r.status == 200, r


def _fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_no_descriptor_leak(start, root):
    (root / "a.txt").write_bytes(FILE)
    (root / "big.bin").write_bytes(b"\0" * (4 * 1024 * 1024))
    (root / "d").mkdir()
    s = start("--write", "--max-body", "1K")
    assert_alive(s)
    base = _fds(s.pid)
    for i in range(20):
        # a download abandoned midway
        c = Conn(s)
        c.request("GET", "/big.bin")
        c.sock.recv(1000)
        c.close()
        # an upload cut off, a rejected upload, a bad request, a listing, a range
        with Conn(s) as c:
            c.send(b"PUT /u.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900\r\n\r\nxx")
        raw(s, reqbytes(s, "PUT", "/v.bin", body=b"y" * 2000))
        raw(s, b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX: \x00\r\n\r\n")
        assert exchange(s, "GET", "/d/").status == 200
        assert exchange(s, "GET", "/big.bin", {"Range": "bytes=0-9"}).status == 206
    assert wait_for(lambda: _fds(s.pid) <= base, timeout=3), \
        (base, _fds(s.pid), os.listdir(f"/proc/{s.pid}/fd"))
    assert sorted(os.listdir(root)) == ["a.txt", "big.bin", "d"]
    assert_alive(s)


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_reset_during_delay_does_not_spin(start):
    # A client that resets while /_/delay holds its answer: the connection must go at
    # once, not be reported as an error on every loop turn.
    import struct
    s = start()
    c = s.connect(timeout=5)
    c.sendall(b"GET /_/delay/3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    time.sleep(0.2)
    t0 = _cpu_seconds(s.pid)
    time.sleep(1.0)
    used = _cpu_seconds(s.pid) - t0
    assert used < 0.3, f"server used {used:.2f} s of CPU in 1 s after a reset"
    assert_alive(s)


def test_linger_after_blocked_write_does_not_spin(start, root):
    # HTTP/1.0 close after a response that filled the socket: while lingering the
    # server waits for reads only.
    (root / "big.bin").write_bytes(os.urandom(16 << 20))
    s = start()
    c = s.connect(timeout=5)
    c.sendall(b"GET /big.bin HTTP/1.0\r\n\r\nX")
    time.sleep(0.3)  # not reading yet: the server's writes block and wait
    got = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        got += len(b)
    # the server has shut its side; keep ours open and watch its CPU
    t0 = _cpu_seconds(s.pid)
    time.sleep(1.0)
    used = _cpu_seconds(s.pid) - t0
    c.close()
    assert got > 16 << 20
    assert used < 0.3, f"server used {used:.2f} s of CPU in 1 s while lingering"
    assert_alive(s)


def test_unread_stderr_pipe_never_stalls_the_server(root):
    # A log reader that stops reading (a full pipe) must cost log lines, not service.
    import http.client
    import subprocess
    from conftest import LOOPKIT, with_threads
    (root / "a.txt").write_bytes(b"a")
    p = subprocess.Popen([LOOPKIT, "serve", str(root), "--port", "0"] + with_threads([]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = p.stdout.readline().decode().strip()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for _ in range(3000):  # ~250 KB of log lines, far over a 64 KiB pipe
            c.request("GET", "/a.txt")
            r = c.getresponse()
            assert r.status == 200
            r.read()
        c.close()
    finally:
        p.terminate()
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("server did not stop after SIGTERM with a full stderr pipe")
    assert rc == 0
