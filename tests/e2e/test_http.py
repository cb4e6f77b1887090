"""End-to-end tests of HTTP/1.1 connection handling: keep-alive, pipelining, HTTP/1.0,
HEAD, OPTIONS, request bodies (Content-Length and chunked) and Expect: 100-continue."""
import hashlib
import http.client
import json
import os
import socket
import time

import pytest

from conftest import (Conn, thread_name, assert_alive, curl, exchange, hard_timeout_fixture, httpc,
                      loop_clients, parse_responses, proc_event_loops, proc_port_fds, raw, reqbytes, segs_in, wait_for)

_hard_timeout = hard_timeout_fixture(20)

A = b"alpha file\n"
B = b"bravo file, a bit longer\n"
C = b"<!doctype html><title>c</title>\n"


@pytest.fixture
def site(root):
    (root / "a.txt").write_bytes(A)
    (root / "b.txt").write_bytes(B)
    (root / "c.html").write_bytes(C)
    return root


# --- persistent connections --------------------------------------------------------------

def test_keepalive_http_client(server, site):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.connect()
        sock = conn.sock
        for i, (path, want) in enumerate([("/a.txt", A), ("/b.txt", B), ("/c.html", C),
                                          ("/a.txt", A), ("/_/get?i=5", None)]):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (path, r.status, body)
            if want is not None:
                assert body == want
            else:
                assert json.loads(body)["args"] == {"i": "5"}
            assert not r.will_close, f"server asked to close after request {i}"
            assert conn.sock is sock, f"connection was not reused for request {i}"
    finally:
        conn.close()


def test_keepalive_raw_sequential(server, site):
    with Conn(server) as c:
        for path, want in [("/a.txt", A), ("/b.txt", B), ("/missing", None), ("/a.txt", A)]:
            c.request("GET", path)
            r = c.response()
            if want is None:
                assert r.status == 404
            else:
                assert (r.status, r.body) == (200, want)
                assert r.header("content-length") == str(len(want))
            assert not r.closes()


def test_pipelining_in_order(server, site):
    reqs = (reqbytes(server, "GET", "/_/delay/0.3")
            + reqbytes(server, "GET", "/a.txt")
            + reqbytes(server, "HEAD", "/b.txt")
            + reqbytes(server, "GET", "/nope.txt")
            + reqbytes(server, "GET", "/c.html", {"Connection": "close"}))
    data = raw(server, reqs)
    rs = parse_responses(data, ["GET", "GET", "HEAD", "GET", "GET"])
    assert [r.status for r in rs] == [200, 200, 200, 404, 200], rs
    assert rs[0].header("content-type") == "application/json"
    assert rs[0].json()["url"] == f"http://{server.host}:{server.port}/_/delay/0.3"
    assert rs[1].body == A
    assert rs[2].body == b"" and rs[2].header("content-length") == str(len(B))
    assert rs[4].body == C
    assert rs[4].closes()
    assert_alive(server)


def test_pipelining_with_bodies(server, site):
    reqs = (reqbytes(server, "POST", "/_/anything/one", body=b"first body")
            + b"POST /_/anything/two HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n5\r\n body\r\n0\r\n\r\n"
            + reqbytes(server, "GET", "/a.txt", {"Connection": "close"}))
    rs = parse_responses(raw(server, reqs))
    assert [r.status for r in rs] == [200, 200, 200], rs
    assert rs[0].json()["data"] == "first body"
    assert rs[0].json()["url"].endswith("/_/anything/one")
    assert rs[1].json()["data"] == "second body"
    assert rs[1].json()["url"].endswith("/_/anything/two")
    assert rs[2].body == A


# --- HTTP/1.0 ----------------------------------------------------------------------------

def test_http10_without_keepalive_closes(server, site):
    with Conn(server) as c:
        c.send(b"GET /a.txt HTTP/1.0\r\n\r\n")  # no Host: fine for 1.0
        r = c.response()
        assert (r.status, r.body) == (200, A), r
        assert r.version == "HTTP/1.1"  # RFC 9110 2.5: a server sends its own highest version
        assert "keep-alive" not in r.tokens("connection")
        closed, extra = c.wait_closed(3)
        assert closed, "server kept an HTTP/1.0 connection open without keep-alive"
        assert extra == b""
    assert_alive(server)


def test_a_closing_answer_leaves_with_its_fin(server, site):
    """The last bytes of an answer after which the connection closes wait for the FIN
    and leave with it: the client receives the SYN-ACK, the ACK of its request and one
    segment holding the answer and the end. A FIN of its own would be a fourth
    segment, waking the client again and costing it an ACK (and a proxy before it,
    which passes the two on as they come)."""
    host = f"{server.host}:{server.port}".encode()
    for request, status in ((b"GET /a.txt HTTP/1.0\r\n\r\n", b"200"),
                            (b"GET /a.txt HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n", b"200"),
                            (b"GET /nothing-here HTTP/1.0\r\n\r\n", b"404"),
                            (b"GET /a.txt HTTP/1.1\r\nHost: " + host + b"\r\nBad Header\r\n\r\n", b"400")):
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 " + status + b" "), data[:40]
            assert data.endswith(A) == (status == b"200")
            assert segs_in(s) == 3, (request, data[:40])


def test_a_closing_answer_survives_bytes_sent_after_its_request(server, site):
    """A client sends more after a `Connection: close` request (a pipelined request, a
    stray CRLF) and reads slowly: the part of the answer its window has not taken yet
    must not be destroyed by the reset a close would send over the unread bytes. The
    whole answer, then the end (RFC 9112 9.6, lingering close)."""
    body = os.urandom(70000)
    (site / "mid.bin").write_bytes(body)
    host = f"{server.host}:{server.port}".encode()
    for first in (b"GET /mid.bin HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n",
                  b"GET /mid.bin HTTP/1.0\r\n\r\n"):
        for _ in range(5):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect((server.host, server.port))
            s.sendall(first)
            time.sleep(0.01)
            s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):  # a reset raises here
                data += chunk
            s.close()
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(body), (first, len(data))


def test_a_closing_answer_to_a_slow_reader_outlasts_the_linger(server, site):
    """A slow reader of a large closing answer that keeps sending stray bytes: the
    linger (2 s) is extended while the answer is still moving, so no reset destroys its
    tail (it used to end 2 s after the last byte was queued)."""
    body = os.urandom(4_000_000)
    (site / "large.bin").write_bytes(body)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((server.host, server.port))
    s.sendall(b"GET /large.bin HTTP/1.0\r\n\r\n")
    data, last = b"", time.monotonic()
    t0 = last
    while chunk := s.recv(16384):  # a reset raises here
        data += chunk
        time.sleep(0.006)  # at most 8 KiB a read (the buffer): 3 s or more for the whole
        if time.monotonic() - last > 0.5:
            s.sendall(b"\r\n")
            last = time.monotonic()
    s.close()
    assert time.monotonic() - t0 > 2.5  # it did outlast one linger
    assert data.endswith(body) and len(data) - data.index(b"\r\n\r\n") - 4 == len(body)


def test_http10_keepalive_stays_open(server, site):
    with Conn(server) as c:
        c.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.response()
        assert (r.status, r.body) == (200, A), r
        assert "keep-alive" in r.tokens("connection"), r.headers
        assert r.header("content-length") == str(len(A))
        c.send(b"GET /b.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.response()
        assert (r.status, r.body) == (200, B), r
        c.send(b"GET /c.html HTTP/1.0\r\n\r\n")
        r = c.response()
        assert (r.status, r.body) == (200, C), r
        closed, _ = c.wait_closed(3)
        assert closed


def test_http10_with_curl(server, site):
    p = curl("--http1.0", "-D", "-", server.url + "a.txt")
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", head
    assert body == A


# --- HEAD, OPTIONS -------------------------------------------------------------------------

def test_head_http_client(server, site):
    r = httpc(server, "HEAD", "/b.txt")
    assert r.status == 200
    assert r.body == b""
    assert r.header("content-length") == str(len(B))
    assert r.header("content-type", "").startswith("text/plain")
    assert r.has("etag") and r.has("last-modified")


def test_head_sends_no_body(server, site):
    # HEAD then GET on one connection: if HEAD leaked a body the second response breaks.
    with Conn(server) as c:
        c.send(reqbytes(server, "HEAD", "/c.html") + reqbytes(server, "GET", "/a.txt"))
        r1 = c.response("HEAD")
        assert r1.status == 200 and r1.header("content-length") == str(len(C))
        r2 = c.response()
        assert (r2.status, r2.body) == (200, A), r2
        assert c.buf == b""


def test_head_missing_is_404_without_body(server, site):
    with Conn(server) as c:
        c.send(reqbytes(server, "HEAD", "/nope") + reqbytes(server, "GET", "/a.txt"))
        assert c.response("HEAD").status == 404
        assert c.response().body == A


def test_options_file(server, site):
    r = exchange(server, "OPTIONS", "/a.txt")
    assert r.status == 204, r
    allow = r.tokens("allow")
    assert {"get", "head", "options"} <= allow, r.headers
    assert not {"put", "delete"} & allow, "PUT/DELETE advertised without --write"
    assert r.body == b""


def test_options_star(server, site):
    r = exchange(server, "OPTIONS", "*")
    assert r.status == 204, r
    assert {"get", "head", "options"} <= r.tokens("allow"), r.headers
    assert_alive(server)


def test_options_with_write_lists_put_delete(start, site):
    s = start("--write")
    r = exchange(s, "OPTIONS", "/a.txt")
    assert r.status == 204
    assert {"get", "head", "options", "put", "delete"} <= r.tokens("allow"), r.headers


def test_common_response_headers(server, site):
    r = exchange(server, "GET", "/a.txt")
    assert r.header("server") == "loopkit/" + _version()
    assert r.header("x-content-type-options") == "nosniff"
    assert r.has("date")
    r = exchange(server, "GET", "/nope")
    assert r.status == 404
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("content-type", "").startswith("text/plain")


# --- request bodies ------------------------------------------------------------------------

def test_content_length_body_echo(server):
    r = httpc(server, "POST", "/_/anything/x?k=v", body=b"hello there",
              headers={"Content-Type": "text/plain"})
    assert r.status == 200
    j = r.json()
    assert j["method"] == "POST"
    assert j["data"] == "hello there"
    assert j["url"].endswith("/_/anything/x?k=v")
    assert j["args"] == {"k": "v"}


def test_json_body_parsed(server):
    r = httpc(server, "PUT", "/_/anything", body=json.dumps({"a": [1, 2], "b": "x"}),
              headers={"Content-Type": "application/json"})
    assert r.status == 200
    assert r.json()["json"] == {"a": [1, 2], "b": "x"}
    assert r.json()["method"] == "PUT"


def test_chunked_body_raw(server):
    req = (b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n"
           b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
    rs = parse_responses(raw(server, req))
    assert len(rs) == 1 and rs[0].status == 200, rs
    assert rs[0].json()["data"] == "hello 0123456789"
    assert_alive(server)


def test_chunked_body_http_client(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        parts = [b"x" * 1000, b"y" * 5000, b"z"]
        conn.request("POST", "/_/anything", body=iter(parts), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body
        assert json.loads(body)["data"] == "x" * 1000 + "y" * 5000 + "z"
        # and the connection is still usable
        conn.request("GET", "/_/get")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    finally:
        conn.close()


def test_empty_chunked_body(server):
    with Conn(server) as c:
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.json()["data"] == ""


def test_body_split_across_packets(server):
    with Conn(server) as c:
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n01")
        time.sleep(0.2)
        c.send(b"2345")
        time.sleep(0.2)
        c.send(b"6789")
        r = c.response()
        assert r.status == 200 and r.json()["data"] == "0123456789"


# --- Expect: 100-continue -------------------------------------------------------------------

def test_expect_100_continue_raw(server):
    with Conn(server, timeout=3) as c:
        c.send(b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_until(b"\r\n\r\n")  # times out (fails) if no 100 is sent
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        c.send(b"hello world")
        r = c.response()
        assert r.status == 200, r
        assert r.json()["data"] == "hello world"
    assert_alive(server)


def test_expect_100_continue_curl_put(start, root):
    s = start("--write")
    data = os.urandom(256 * 1024)
    src = root.parent / "upload.bin"
    src.write_bytes(data)
    t0 = time.monotonic()
    p = curl("-v", "-T", str(src), "-H", "Expect: 100-continue", "--expect100-timeout", "3",
             "-w", "%{http_code}", "-o", "/dev/null", s.url + "up.bin")
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    err = p.stderr.decode(errors="replace")
    assert "< HTTP/1.1 100 Continue" in err, err
    assert p.stdout == b"201", p.stdout
    assert elapsed < 2.5, f"curl waited for the 100-continue timeout ({elapsed:.1f} s)"
    assert hashlib.sha256((root / "up.bin").read_bytes()).digest() == \
        hashlib.sha256(data).digest()


# --- framing robustness ------------------------------------------------------------------------

def test_many_pipelined_requests(server, site):
    n = 200
    reqs = b"".join(reqbytes(server, "HEAD" if i % 7 == 3 else "GET",
                             ("/a.txt", "/b.txt", "/c.html")[i % 3])
                    for i in range(n))
    reqs += reqbytes(server, "GET", "/a.txt", {"Connection": "close"})
    with Conn(server, timeout=10) as c:
        c.send(reqs)
        for i in range(n):
            m = "HEAD" if i % 7 == 3 else "GET"
            r = c.response(m)
            want = (A, B, C)[i % 3]
            assert r.status == 200, (i, r)
            assert r.body == (b"" if m == "HEAD" else want), (i, r)
        assert c.response().body == A
        closed, extra = c.wait_closed(3)
        assert closed and extra == b""


def test_connection_close_on_http11(server, site):
    with Conn(server) as c:
        c.request("GET", "/a.txt", {"Connection": "close"})
        r = c.response()
        assert (r.status, r.body) == (200, A)
        assert r.closes()
        closed, extra = c.wait_closed(3)
        assert closed and extra == b""


def test_request_after_client_half_close(server, site):
    with Conn(server) as c:
        c.request("GET", "/a.txt")
        c.sock.shutdown(socket.SHUT_WR)
        r = c.response()
        assert (r.status, r.body) == (200, A), r


def test_body_on_get_is_skipped(server, site):
    # The body of a GET for a file must be consumed, never parsed as the next request.
    smuggled = reqbytes(server, "GET", "/c.html")
    reqs = (reqbytes(server, "GET", "/a.txt", body=smuggled)
            + reqbytes(server, "GET", "/b.txt", {"Connection": "close"}))
    rs = parse_responses(raw(server, reqs))
    # The body is framed by its Content-Length: skipped, and the connection goes on.
    assert [(r.status, r.body) for r in rs] == [(200, A), (200, B)], rs


def test_body_of_rejected_put_is_not_a_request(server, site):
    smuggled = reqbytes(server, "GET", "/c.html")
    reqs = (reqbytes(server, "PUT", "/a.txt", body=smuggled)
            + b"POST /_/anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n"
            + reqbytes(server, "GET", "/b.txt", {"Connection": "close"}))
    rs = parse_responses(raw(server, reqs))
    # Each body is framed (Content-Length, chunked): the 405 is answered, its body skipped,
    # and the next two requests are answered in turn; the smuggled GET never is.
    assert [r.status for r in rs] == [405, 200, 200], rs
    assert rs[1].json()["data"] == smuggled.decode()
    assert rs[2].body == B
    assert_alive(server)


def test_delay_does_not_block_others(start, site):
    # One loop: with two, the other requests may simply land on the other loop.
    server = start("--threads", "1")
    slow = Conn(server, timeout=5)
    try:
        slow.request("GET", "/_/delay/1.5")
        time.sleep(0.1)
        t0 = time.monotonic()
        for _ in range(5):
            r = exchange(server, "GET", "/a.txt")
            assert r.body == A
        assert time.monotonic() - t0 < 0.5, "a /_/delay request blocked other clients"
        r = slow.response()
        assert r.status == 200
    finally:
        slow.close()


def test_a_few_keep_alive_clients_are_spread_over_the_threads(start, site):
    """8 keep-alive connections made one after another on 2 threads: the loop woken
    first (EPOLLEXCLUSIVE wakes them in a fixed order) must not keep them all, or a
    keep-alive load of a few clients runs on one core. Each thread holds 3 to 5."""
    s = start("--threads", "2")
    conns = []
    try:
        for _ in range(8):
            c = Conn(s)
            c.request("GET", "/b.txt")
            assert c.response().status == 200
            conns.append(c)
        held = lambda: sorted(map(len, loop_clients(s, [c.sock for c in conns]).values()))
        assert wait_for(lambda: sum(held()) == 8 and len(held()) == 2, 3), held()
        assert held()[0] >= 3, held()
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("n", [1, 3])
def test_threads_flag(start, site, n):
    """--threads N: N event-loop threads sharing the one listener (the port is taken
    alone, never SO_REUSEPORT), and requests held at the same moment by different
    threads. The n=1 row is the control: a server that ignored the flag (and ran its
    default of one loop per CPU) fails one of the two rows."""
    s = start("--threads", str(n))
    listeners = lambda: proc_port_fds(s.pid, s.port)[0]
    loops = lambda: proc_event_loops(s.pid)
    # Idle, every loop sleeps in epoll_wait watching the port's one listener.
    assert wait_for(lambda: len(loops()) == n and len(listeners()) == 1
                    and all(len(w & listeners()) == 1 for w in loops().values()), 3), (
        n, os.listdir(f"/proc/{s.pid}/task"), loops(), listeners())
    tasks = [t for t in os.listdir(f"/proc/{s.pid}/task") if thread_name(s.pid, t) != "lk-peers"]
    assert len(tasks) == n, os.listdir(f"/proc/{s.pid}/task")
    # 30 requests held at once (/_/delay answers after 1 s): a loop past its share
    # deals new connections to the others, so every loop holds some at the same moment.
    conns = [Conn(s) for _ in range(30)]
    try:
        for c in conns:
            c.request("GET", "/_/delay/1")
        held = lambda: loop_clients(s, [c.sock for c in conns])
        assert wait_for(lambda: len(held()) == n and all(held().values())
                        and sum(map(len, held().values())) == 30, 3), held()
        for c in conns:
            r = c.response()
            assert (r.status, r.json()["url"].endswith("/_/delay/1")) == (200, True), r
        # Keep-alive connections stay with their loop: all of them still answer.
        for c in conns:
            c.request("GET", "/b.txt")
            r = c.response()
            assert (r.status, r.body) == (200, B)
    finally:
        for c in conns:
            c.close()


# --- headers every response carries ---------------------------------------------------------

def _version():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "VERSION")) as f:
        return f.read().strip()


def test_every_response_has_nosniff_server_and_one_line_errors(start, site):
    (site / "dir").mkdir()
    s = start("--max-body", "1K", "--write")
    etag = exchange(s, "GET", "/a.txt").header("etag")
    # (method, target, headers, body, expected status); all on one keep-alive connection,
    # which also checks that each response is framed correctly.
    cases = [
        ("GET", "/a.txt", {}, None, 200),
        ("GET", "/a.txt", {"Range": "bytes=0-1"}, None, 206),
        ("GET", "/a.txt", {"Range": "bytes=999-"}, None, 416),
        ("GET", "/a.txt", {"If-None-Match": etag}, None, 304),
        ("GET", "/dir", {}, None, 301),
        ("GET", "/dir/", {}, None, 200),
        ("GET", "/dir/", {"Accept": "application/json"}, None, 200),
        ("GET", "/nope", {}, None, 404),
        ("POST", "/a.txt", {}, b"x", 405),
        ("OPTIONS", "/a.txt", {}, None, 204),
        ("GET", "/a.txt", {"Host": "evil.example"}, None, 403),
        ("BREW", "/a.txt", {}, None, 501),
        ("GET", "/_/get", {}, None, 200),
        ("GET", "/_/nope", {}, None, 404),
        ("HEAD", "/a.txt", {}, None, 200),
    ]
    c = Conn(s)
    try:
        for method, target, headers, body, status in cases:
            c.request(method, target, headers, body)
            try:
                r = c.response(method)
            except EOFError as e:
                pytest.fail(f"{method} {target} {headers}: connection closed instead of "
                            f"a {status} response ({e})")
            assert r.status == status, (method, target, r)
            assert r.header("x-content-type-options") == "nosniff", (target, r.headers)
            assert r.header("server") == "loopkit/" + _version(), r.headers
            if status >= 400 and not target.startswith("/_/"):
                assert r.header("content-type", "").startswith("text/plain"), r.headers
                assert r.body.rstrip(b"\n").count(b"\n") == 0 and r.body.strip(), r.body
            # None of these calls for a close (docs/serve.md marks the rows that do).
            assert not r.closes(), (method, target, r)
    finally:
        c.close()
    # Responses that close the connection.
    for data, status in [
        (b"GET /a.txt HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
        (b"GET /a.txt HTTP/1.1\r\n\r\n", 400),
        (reqbytes(s, "GET", "/" + "x" * 9000), 414),
        (reqbytes(s, "GET", "/a.txt", {"X-Big": "y" * 17000}), 431),
        (reqbytes(s, "PUT", "/big", body=b"z" * 2000), 413),
        (b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nExpect: nope\r\n\r\n", 417),
    ]:
        with Conn(s) as c:
            c.send(data)
            r = c.response()
            assert r.status == status, (data[:40], r)
            assert r.header("x-content-type-options") == "nosniff", r.headers
            assert r.header("server") == "loopkit/" + _version(), r.headers
            assert r.body.rstrip(b"\n").count(b"\n") == 0 and r.body.strip(), r.body
    assert_alive(s)


def test_long_pipeline_of_big_responses_is_answered_whole(start, root):
    # 60 requests in one write, each answered with 30 KB: more than one run of the
    # connection handles, so the rest must continue without new input from us.
    (root / "f30k.bin").write_bytes(os.urandom(30000))
    s = start()
    req = b"GET /f30k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n" * 60
    c = s.connect(timeout=5)
    try:
        c.sendall(req)
        got = b""
        deadline = time.monotonic() + 10
        while got.count(b"HTTP/1.1 200 OK") < 60 or len(got) < 60 * 30000:
            assert time.monotonic() < deadline, got.count(b"HTTP/1.1 200 OK")
            b = c.recv(1 << 20)
            assert b, f"closed after {got.count(b'HTTP/1.1 200 OK')} responses"
            got += b
        assert b"408" not in got.split(b"\r\n", 1)[0]
        assert got.count(b"HTTP/1.1 200 OK") == 60
    finally:
        c.close()


def test_a_foreign_host_is_told_the_option_that_accepts_it(server):
    r = httpc(server, "GET", "/", headers={"Host": "evil.example"})
    assert r.status == 403
    assert r.body.decode().rstrip().endswith("NAME.localhost in the URL (or start the server with --allow-host NAME)"), \
        r.body
