"""End-to-end tests for the httpbin-like API endpoints under /_/ of `loopkit serve`.

Each test starts a real server (fixture `server` / `start` from conftest.py) and talks to it
with real clients: curl, http.client, urllib and raw sockets. Every network operation has a
timeout and every test has a hard wall-clock limit (SIGALRM), so a hung server fails a test
instead of hanging the suite.
"""
import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from conftest import hard_timeout_fixture, parse_responses, raw

TEST_LIMIT = 20  # seconds per test, hard
FORM_CSP = "sandbox allow-forms; default-src 'none'; form-action 'self'"
CSP = "sandbox; default-src 'none'"  # every /_/ answer (docs/serve.md)


_hard_timeout = hard_timeout_fixture(TEST_LIMIT)


# ---------------------------------------------------------------- helpers


class Resp:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<Resp {self.status} {dict(self.headers)} {self.body[:300]!r}>"


def request(server, path, method="GET", body=None, headers=None, timeout=5):
    """One request on a fresh http.client connection; the whole body is read."""
    c = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, r.msg, data)
    finally:
        c.close()


def curl(server, *args, path=None, timeout=15):
    """Run curl; `path` (if given) is appended to the server URL as the last argument."""
    cmd = ["curl", "-sS", "-g", "--noproxy", "*", "--max-time", str(timeout - 3)] + list(args)
    if path is not None:
        cmd.append(server.url.rstrip("/") + path)
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def curl_status_headers(server, path, *args):
    """curl -D - -o FILE: return (status, {lower-name: [values]}, body bytes) of the last response."""
    p = curl(server, "-D", "-", "-o", "-", *args, path=path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return status, hdrs, body


def ci_get(d, name):
    """Case-insensitive lookup in a JSON object of headers."""
    for k, v in d.items():
        if k.lower() == name.lower():
            return v
    raise KeyError(name)


def still_serving(server):
    r = request(server, "/_/health", timeout=3)
    assert r.status == 200, r


def assert_json_response(r):
    ct = r.header("Content-Type") or ""
    assert ct.startswith("application/json"), r
    return r.json()


# ---------------------------------------------------------------- /_/get


def test_get_args_headers_origin_url(server):
    r = request(server, "/_/get?a=1&a=2&b=3&sp=hello%20world",
                headers={"X-Foo": "bar", "User-Agent": "api-test/1"})
    assert r.status == 200, r
    j = assert_json_response(r)
    assert j["args"] == {"a": ["1", "2"], "b": "3", "sp": "hello world"}
    assert ci_get(j["headers"], "X-Foo") == "bar"
    assert ci_get(j["headers"], "User-Agent") == "api-test/1"
    assert ci_get(j["headers"], "Host") == f"127.0.0.1:{server.port}"
    assert j["origin"] == "127.0.0.1"
    assert j["url"] == f"http://127.0.0.1:{server.port}/_/get?a=1&a=2&b=3&sp=hello%20world", j


def test_get_with_curl(server):
    p = curl(server, "-A", "curl-api-test", "-H", "X-Bar: baz", path="/_/get?x=1")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["args"] == {"x": "1"}
    assert ci_get(j["headers"], "User-Agent") == "curl-api-test"
    assert ci_get(j["headers"], "X-Bar") == "baz"
    assert j["origin"] == "127.0.0.1"


def test_get_no_args_is_empty_object(server):
    j = request(server, "/_/get").json()
    assert j["args"] == {}


def test_json_escapes_html_characters(server):
    r = request(server, "/_/get?q=%3Cb%3E%26x")
    assert r.status == 200, r
    assert b"<" not in r.body and b">" not in r.body and b"&" not in r.body, r.body
    assert b"\\u003cb\\u003e\\u0026x" in r.body, r.body
    assert r.json()["args"] == {"q": "<b>&x"}


def test_head_get_has_no_body(server):
    out = raw(server, b"HEAD /_/get HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    head, sep, rest = out.partition(b"\r\n\r\n")
    assert sep, out
    assert head.startswith(b"HTTP/1.1 200"), head
    assert rest == b"", rest
    still_serving(server)


# ---------------------------------------------------------------- /_/anything

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("path", ["/_/anything", "/_/anything/x/y"])
@pytest.mark.parametrize("method", METHODS)
def test_anything_json_body(server, method, path):
    body = b'{"k": [1, 2], "s": "v"}'
    r = request(server, path + "?q=1&q=2&z=", method=method, body=body,
                headers={"Content-Type": "application/json", "X-Thing": "t"})
    assert r.status == 200, r
    j = assert_json_response(r)
    assert j["method"] == method
    assert urllib.parse.urlsplit(j["url"]).path == path
    assert j["args"] == {"q": ["1", "2"], "z": ""}
    assert j["data"] == body.decode()
    assert j["json"] == {"k": [1, 2], "s": "v"}
    assert ci_get(j["headers"], "X-Thing") == "t"
    assert ci_get(j["headers"], "Content-Type") == "application/json"
    assert j["origin"] == "127.0.0.1"
    assert j["url"].endswith(path + "?q=1&q=2&z="), j["url"]
    assert not j["form"]


@pytest.mark.parametrize("method", METHODS)
def test_anything_without_body(server, method):
    r = request(server, "/_/anything/no/body", method=method)
    assert r.status == 200, r
    j = r.json()
    assert j["method"] == method
    assert urllib.parse.urlsplit(j["url"]).path == "/_/anything/no/body"
    assert j["args"] == {}
    assert j["data"] == ""
    assert j["json"] is None
    assert not j["form"]


def test_anything_json_with_charset(server):
    r = request(server, "/_/anything", method="POST", body=b'[1, "two", null, true]',
                headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r
    assert r.json()["json"] == [1, "two", None, True]


def test_anything_invalid_json_is_null(server):
    r = request(server, "/_/anything", method="POST", body=b'{"k": 1,',
                headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    j = r.json()
    assert j["json"] is None
    assert j["data"] == '{"k": 1,'


def test_anything_form_urlencoded_with_curl(server):
    p = curl(server, "-X", "PATCH", "-d", "a=1&b=hello+world&c=%26%3C", path="/_/anything/f")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["method"] == "PATCH"
    assert ci_get(j["headers"], "Content-Type") == "application/x-www-form-urlencoded"
    assert j["form"] == {"a": "1", "b": "hello world", "c": "&<"}
    assert j["data"] == ""  # a form is in "form", as httpbin shows it
    assert j["json"] is None
    assert b"<" not in p.stdout


def test_anything_body_with_html_is_escaped(server):
    r = request(server, "/_/anything", method="POST", body=b"<script>&</script>",
                headers={"Content-Type": "text/plain"})
    assert r.status == 200, r
    assert b"<script>" not in r.body
    assert b"\\u003cscript\\u003e\\u0026\\u003c/script\\u003e" in r.body, r.body
    assert r.json()["data"] == "<script>&</script>"


def test_anything_chunked_upload_curl(server, tmp_path):
    data = b"chunky-" * 3000  # 21000 bytes
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    p = curl(server, "-X", "POST", "-H", "Transfer-Encoding: chunked",
             "-H", "Content-Type: text/plain", "--data-binary", f"@{f}", path="/_/anything")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["method"] == "POST"
    assert j["data"] == data.decode()
    assert ci_get(j["headers"], "Transfer-Encoding") == "chunked"


def test_anything_chunked_upload_http_client(server):
    def gen():
        yield b'{"a":'
        yield b' [1, 2'
        yield b"]}"

    r = request(server, "/_/anything/chunks", method="PUT", body=gen(),
                headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    j = r.json()
    assert j["data"] == '{"a": [1, 2]}'
    assert j["json"] == {"a": [1, 2]}


def test_anything_chunked_upload_raw(server):
    req = (b"POST /_/anything HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
           b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n")
    (r,) = parse_responses(raw(server, req))
    assert r.status == 200, r
    # JSON answers are built whole, so they go out with a Content-Length
    assert not r.has("transfer-encoding") and r.header("content-length") == str(len(r.body)), r
    assert r.json()["data"] == "hello 0123456789"


def _dechunk(b):
    out = b""
    while True:
        line, _, b = b.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            return out
        out += b[:n]
        b = b[n + 2:]


def test_anything_body_limit_413(server, tmp_path):
    ok = tmp_path / "ok.bin"
    ok.write_bytes(b"a" * (1 << 20))
    p = curl(server, "-H", "Content-Type: text/plain", "--data-binary", f"@{ok}",
             path="/_/anything")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["data"]) == 1 << 20
    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * ((1 << 20) + 1))
    p = curl(server, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: text/plain",
             "--data-binary", f"@{big}", path="/_/anything")
    assert p.stdout == b"413", (p.stdout, p.stderr)
    still_serving(server)


# ---------------------------------------------------------------- headers / ip / user-agent


def test_headers(server):
    r = request(server, "/_/headers", headers={"X-Custom-One": "1", "Accept": "text/x-test"})
    assert r.status == 200, r
    j = assert_json_response(r)
    assert set(j) == {"headers"}
    assert ci_get(j["headers"], "X-Custom-One") == "1"
    assert ci_get(j["headers"], "Accept") == "text/x-test"


def test_headers_sorted_and_repeated_ones_joined(server):
    """As httpbin: names capitalised and sorted, a repeated field once with its values
    joined by commas, so the JSON object has no duplicate keys (curl sends them)."""
    p = subprocess.run(["curl", "-sS", "-H", "x-dup: a", "-H", "X-Zed: z", "-H", "X-DUP: b",
                        "-H", "x-a: 1", "-H", "X-Dup: c", server.url + "_/headers"],
                       capture_output=True, text=True, timeout=10)
    pairs = json.loads(p.stdout, object_pairs_hook=lambda kv: kv)[0][1]
    assert [k for k, _ in pairs] == ["Accept", "Host", "User-Agent", "X-A", "X-Dup", "X-Zed"]
    assert dict(pairs)["X-Dup"] == "a,b,c"


def test_ip_urllib(server):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.url + "_/ip", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        assert json.loads(r.read()) == {"origin": "127.0.0.1"}


def test_user_agent_curl(server):
    p = curl(server, "-A", "loopkit-tester/2.0", path="/_/user-agent")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"user-agent": "loopkit-tester/2.0"}


# ---------------------------------------------------------------- status


def test_status_418(server):
    r = request(server, "/_/status/418")
    assert r.status == 418, r


@pytest.mark.parametrize("code", [200, 204, 302, 404, 500, 599])
def test_status_various(server, code):
    r = request(server, f"/_/status/{code}")
    assert r.status == code, r


def test_status_random_choice(server):
    seen = set()
    for _ in range(20):
        seen.add(request(server, "/_/status/201,202").status)
    assert seen == {201, 202}, seen


@pytest.mark.parametrize("bad", ["600", "abc", "99", "201,abc", "-1"])
def test_status_invalid_400(server, bad):
    r = request(server, f"/_/status/{bad}")
    assert r.status == 400, r
    still_serving(server)


# ---------------------------------------------------------------- delay


def test_delay_does_not_block_others(start):
    # One loop: with two, the fast request may simply land on the other loop.
    server = start("--threads", "1")
    result = {}

    def slow():
        try:
            t0 = time.monotonic()
            r = request(server, "/_/delay/0.5", timeout=5)
            result["end"] = time.monotonic()
            result["elapsed"] = result["end"] - t0
            result["status"] = r.status
        except Exception as e:  # reported below
            result["error"] = repr(e)

    th = threading.Thread(target=slow, daemon=True)
    th.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    r = request(server, "/_/get", timeout=2)
    fast_end = time.monotonic()
    fast = fast_end - t0
    th.join(5)
    assert not th.is_alive(), "delayed request did not finish"
    assert "error" not in result, result
    assert r.status == 200
    assert fast < 0.2, f"/_/get during /_/delay took {fast:.3f} s"
    assert result["status"] == 200, result
    assert 0.45 <= result["elapsed"] < 3, result
    assert fast_end < result["end"], "fast request was not answered while the delay ran"


def test_delay_too_long_400(server):
    t0 = time.monotonic()
    r = request(server, "/_/delay/11")
    assert r.status == 400, r
    assert time.monotonic() - t0 < 1


def test_delay_invalid_400(server):
    assert request(server, "/_/delay/abc").status == 400


# ---------------------------------------------------------------- bytes


def test_bytes_length(server):
    r = request(server, "/_/bytes/1024")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/octet-stream")
    assert len(r.body) == 1024
    assert r.header("Content-Length") == "1024"


def test_bytes_seed_reproducible(server):
    a = request(server, "/_/bytes/4096?seed=42")
    b = request(server, "/_/bytes/4096?seed=42")
    c = request(server, "/_/bytes/4096?seed=43")
    assert a.status == b.status == c.status == 200
    assert len(a.body) == len(c.body) == 4096
    assert a.body == b.body
    assert a.body != c.body
    assert len(set(a.body)) > 100, "seeded bytes do not look random"


def test_bytes_too_big_400(server):
    r = request(server, "/_/bytes/104857601")
    assert r.status == 400, r
    still_serving(server)


def test_bytes_max_size_with_curl(server):
    t0 = time.monotonic()
    p = curl(server, "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
             path="/_/bytes/104857600")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "200 104857600"
    assert time.monotonic() - t0 < 8


# ---------------------------------------------------------------- stream-bytes / drip


def test_stream_bytes_chunked(server):
    c = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        c.request("GET", "/_/stream-bytes/5000")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Transfer-Encoding") == "chunked"
        assert r.getheader("Content-Length") is None
        data = r.read()
        assert len(data) == 5000
    finally:
        c.close()


def test_stream_bytes_raw_is_chunk_framed(server):
    out = raw(server, b"GET /_/stream-bytes/5000?chunk_size=1000 HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\n\r\n")
    assert len(_dechunk(body)) == 5000


def test_drip(server):
    c = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        t0 = time.monotonic()
        c.request("GET", "/_/drip?duration=1&numbytes=5")
        r = c.getresponse()
        assert r.status == 200
        got = b""
        stamps = []
        while True:
            b = r.read(1)
            if not b:
                break
            got += b
            stamps.append(time.monotonic() - t0)
        total = time.monotonic() - t0
    finally:
        c.close()
    assert len(got) == 5, got
    assert 0.8 <= total < 2.5, total
    assert stamps[-1] - stamps[0] >= 0.5, f"bytes not dripped over time: {stamps}"


# ---------------------------------------------------------------- redirects


def test_redirect_chain_curl(server, tmp_path):
    body = tmp_path / "body"
    p = curl(server, "-L", "--max-redirs", "10", "-D", "-", "-o", str(body),
             "-w", "\nEND %{num_redirects} %{url_effective} %{http_code}", path="/_/redirect/3")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode("latin-1")
    locs = [ln.split(":", 1)[1].strip() for ln in out.split("\r\n")
            if ln.lower().startswith("location:")]
    statuses = [int(ln.split()[1]) for ln in out.split("\r\n") if ln.startswith("HTTP/")]
    assert len(locs) == 3, out
    assert locs[0].endswith("/_/relative-redirect/2")  # httpbin's chain
    assert locs[1].endswith("/_/relative-redirect/1")
    assert locs[2].endswith("/_/get")
    assert statuses == [302, 302, 302, 200], statuses
    end = out.rsplit("END ", 1)[1].split()
    assert end[0] == "3"
    assert end[1] == server.url + "_/get"
    assert end[2] == "200"
    assert json.loads(body.read_bytes())["url"].endswith("/_/get")


def q(url):
    return urllib.parse.quote(url, safe="")


def test_redirect_to_relative(server):
    r = request(server, "/_/redirect-to?url=" + q("/_/get"))
    assert r.status == 302, r
    assert r.header("Location") == "/_/get"


def test_redirect_to_status_code(server):
    r = request(server, "/_/redirect-to?url=" + q("/_/get") + "&status_code=307")
    assert r.status == 307, r
    assert r.header("Location") == "/_/get"


def test_redirect_to_loopback_absolute(server):
    target = f"http://127.0.0.1:{server.port}/x"
    r = request(server, "/_/redirect-to?url=" + q(target))
    assert r.status == 302, r
    assert r.header("Location") == target


@pytest.mark.parametrize("url", [
    "http://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/_/get",
    "http://127.0.0.1.evil.example/",
    "http://127.0.0.1@evil.example/",
    "javascript:alert(1)",
])
def test_redirect_to_foreign_400(server, url):
    r = request(server, "/_/redirect-to?url=" + q(url))
    assert r.status == 400, r
    assert r.header("Location") is None
    still_serving(server)


# ---------------------------------------------------------------- response-headers


def test_response_headers_repeated(server):
    r = request(server, "/_/response-headers?X-Test=1&X-Test=2&X-Other=o")
    assert r.status == 200, r
    assert r.headers.get_all("X-Test") == ["1", "2"]
    assert r.header("X-Other") == "o"
    j = r.json()
    assert ci_get(j, "X-Test") == ["1", "2"]
    assert ci_get(j, "X-Other") == "o"


def test_response_headers_xss_is_neutralised(server):
    qs = urllib.parse.urlencode([("Content-Type", "text/html"),
                                 ("x", "<img src=x onerror=alert(1)>")])
    r = request(server, "/_/response-headers?" + qs)
    assert r.status == 200, r
    assert b"<img" not in r.body, r.body
    assert b"\\u003cimg" in r.body, r.body
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Content-Security-Policy") == CSP, r


# ---------------------------------------------------------------- auth


def test_basic_auth(server):
    r = request(server, "/_/basic-auth/u/p")
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Basic realm="loopkit"', r

    status, hdrs, body = curl_status_headers(server, "/_/basic-auth/u/p", "-u", "u:p")
    assert status == 200, body
    j = json.loads(body)
    assert j["authenticated"] is True
    assert j["user"] == "u"

    r = request(server, "/_/basic-auth/u/p", headers={"Authorization": "Basic dTp3cm9uZw=="})
    assert r.status == 401, r  # u:wrong
    status, _, _ = curl_status_headers(server, "/_/basic-auth/u/p", "-u", "x:p")
    assert status == 401


def test_bearer(server):
    r = request(server, "/_/bearer")
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == "Bearer", r
    r = request(server, "/_/bearer", headers={"Authorization": "Basic dTpw"})
    assert r.status == 401, r
    p = curl(server, "-H", "Authorization: Bearer tok-123.abc", path="/_/bearer")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["authenticated"] is True
    assert j["token"] == "tok-123.abc"


# ---------------------------------------------------------------- caching


def test_cache_conditional(server):
    r = request(server, "/_/cache")
    assert r.status == 200, r
    etag = r.header("ETag")
    lm = r.header("Last-Modified")
    assert etag and lm, r
    r2 = request(server, "/_/cache", headers={"If-None-Match": etag})
    assert r2.status == 304, r2
    assert r2.body == b""
    r3 = request(server, "/_/cache", headers={"If-Modified-Since": lm})
    assert r3.status == 304, r3
    assert r3.body == b""


def test_cache_conditional_curl(server):
    p = curl(server, "-o", "/dev/null", "-w", "%{http_code}",
             "-H", "If-Modified-Since: Sat, 29 Oct 2094 19:43:31 GMT", path="/_/cache")
    assert p.stdout == b"304", (p.stdout, p.stderr)


def test_cache_max_age(server):
    r = request(server, "/_/cache/60")
    assert r.status == 200, r
    assert r.header("Cache-Control") == "public, max-age=60", r  # docs/serve.md


def test_etag(server):
    r = request(server, "/_/etag/abc")
    assert r.status == 200, r
    assert r.header("ETag") == '"abc"'
    r = request(server, "/_/etag/abc", headers={"If-None-Match": '"abc"'})
    assert r.status == 304, r
    assert r.body == b""
    r = request(server, "/_/etag/abc", headers={"If-None-Match": '"other"'})
    assert r.status == 200, r
    r = request(server, "/_/etag/abc", headers={"If-Match": '"zzz"'})
    assert r.status == 412, r
    r = request(server, "/_/etag/abc", headers={"If-Match": '"abc"'})
    assert r.status == 200, r


@pytest.mark.parametrize("tag", ["%00", "a%00b", "a%20b", "%22", "a%09", "%7F"])
def test_etag_that_is_no_entity_tag_is_400(server, tag):
    """An entity tag's bytes are etagc (RFC 9110 8.8.3): a NUL gave 'ETag: ""'."""
    r = request(server, "/_/etag/" + tag)
    assert r.status == 400 and r.header("ETag") is None, r


# ---------------------------------------------------------------- uuid / base64

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_uuid(server):
    a = request(server, "/_/uuid")
    b = request(server, "/_/uuid")
    assert a.status == b.status == 200
    ua = assert_json_response(a)["uuid"]
    ub = b.json()["uuid"]
    assert UUID4.match(ua), ua
    assert UUID4.match(ub), ub
    assert ua != ub


def test_base64(server):
    r = request(server, "/_/base64/aGVsbG8=")
    assert r.status == 200, r
    assert r.body == b"hello"
    assert r.header("Content-Type").startswith("text/plain"), r


def test_base64_with_curl(server):
    p = curl(server, path="/_/base64/bG9vcGtpdCByb2Nrcw==")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"loopkit rocks"


@pytest.mark.parametrize("bad", ["@@@@", "aGVsbG8=x===", "a"])
def test_base64_invalid_400(server, bad):
    r = request(server, "/_/base64/" + bad)
    assert r.status == 400, r


# ---------------------------------------------------------------- cookies


def test_cookies_set_header(server):
    r = request(server, "/_/cookies/set?a=1")
    assert r.status == 302, r
    assert r.headers.get_all("Set-Cookie") == ["a=1; Path=/"], r  # docs/serve.md
    assert r.header("Location") == "/_/cookies", r


def test_cookies_echo(server):
    r = request(server, "/_/cookies", headers={"Cookie": "a=1; b=two"})
    assert r.status == 200, r
    assert assert_json_response(r) == {"cookies": {"a": "1", "b": "two"}}
    assert request(server, "/_/cookies").json() == {"cookies": {}}


def test_cookies_jar_flow_curl(server, tmp_path):
    jar = str(tmp_path / "jar.txt")
    p = curl(server, "-c", jar, "-o", "/dev/null", "-w", "%{http_code}",
             path="/_/cookies/set?a=1")
    assert p.stdout == b"302", (p.stdout, p.stderr)
    p = curl(server, "-b", jar, path="/_/cookies")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"cookies": {"a": "1"}}
    p = curl(server, "-b", jar, "-c", jar, "-o", "/dev/null", "-w", "%{http_code}",
             path="/_/cookies/delete?a")
    assert p.stdout == b"302", (p.stdout, p.stderr)
    p = curl(server, "-b", jar, path="/_/cookies")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"cookies": {}}


def test_cookies_set_follow_with_curl(server, tmp_path):
    jar = str(tmp_path / "jar2.txt")
    p = curl(server, "-L", "-c", jar, "-b", jar, path="/_/cookies/set?k=v&n=2")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"cookies": {"k": "v", "n": "2"}}


# ---------------------------------------------------------------- health / 404


def test_health(server):
    r = request(server, "/_/health")
    assert r.status == 200, r
    assert isinstance(assert_json_response(r), dict)


@pytest.mark.parametrize("path", ["/_/nope", "/_/getx", "/_/get/extra/x"])
def test_unknown_is_json_404(server, path):
    r = request(server, path)
    assert r.status == 404, r
    j = assert_json_response(r)
    assert "error" in j


# ---------------------------------------------------------------- headers on every response

ALL_PATHS = [
    "/_/get", "/_/anything/z", "/_/headers", "/_/ip", "/_/user-agent", "/_/status/418",
    "/_/status/abc", "/_/status/204", "/_/delay/0", "/_/bytes/10", "/_/stream-bytes/10",
    "/_/drip?duration=0&numbytes=2", "/_/redirect/1", "/_/redirect-to?url=%2F",
    "/_/redirect-to?url=http%3A%2F%2Fevil.example%2F", "/_/response-headers?a=b",
    "/_/basic-auth/u/p", "/_/bearer", "/_/cache", "/_/cache/5", "/_/etag/e", "/_/uuid",
    "/_/base64/aGk=", "/_/base64/@@", "/_/cookies", "/_/cookies/set?a=1",
    "/_/cookies/delete?a", "/_/health", "/_/nope",
    # httpbin's and go-httpbin's endpoints added for issue 12: pages and XML included
    "/_/post", "/_/json", "/_/html", "/_/xml", "/_/robots.txt", "/_/deny", "/_/encoding/utf8",
    "/_/forms/post", "/_/image", "/_/image/png", "/_/image/jpeg", "/_/image/webp", "/_/image/svg",
    "/_/gzip", "/_/deflate", "/_/brotli", "/_/stream/2", "/_/range/10", "/_/range/0", "/_/links/2",
    "/_/links/2/0", "/_/hidden-basic-auth/u/p", "/_/digest-auth/auth/u/p", "/_/relative-redirect/1",
    "/_/absolute-redirect/1", "/_/sse?count=1&duration=0", "/_/trailers?a=b", "/_/dump/request",
    "/_/cookies/set/k/v",
]


@pytest.mark.parametrize("path", ALL_PATHS)
def test_security_headers_everywhere_and_no_cors(server, path):
    r = request(server, path)
    assert r.header("X-Content-Type-Options") == "nosniff", r
    # The form page alone may post its form, to this server only.
    csp = FORM_CSP if path == "/_/forms/post" else CSP
    assert r.header("Content-Security-Policy") == csp, r
    assert r.header("Access-Control-Allow-Origin") is None, r


def test_cors_flag(start):
    s = start("--cors")
    r = request(s, "/_/get", headers={"Origin": "http://localhost:3000"})
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Origin") == "*"
    r = request(s, "/_/nope")
    assert r.header("Access-Control-Allow-Origin") == "*"


def test_no_cors_without_flag_even_with_origin(server):
    r = request(server, "/_/get", headers={"Origin": "http://localhost:3000"})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") is None


def test_keepalive_sequence_on_one_connection(server):
    c = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        for path, code in [("/_/get", 200), ("/_/status/418", 418), ("/_/bytes/100", 200),
                           ("/_/nope", 404), ("/_/stream-bytes/300", 200), ("/_/uuid", 200)]:
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            assert r.status == code, path
        c.request("POST", "/_/anything", body=b'{"x":1}', headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert json.loads(r.read())["json"] == {"x": 1}
    finally:
        c.close()
