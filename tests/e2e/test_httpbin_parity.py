"""httpbin parity, checked against the real thing (issue 12): Debian's python3-httpbin
runs here, the same requests go to it and to loopkit's /_/ endpoints, and the statuses
and JSON keys must agree, except where docs/serve.md lists a deliberate difference
(DIFFERENCES below is that list, and a test checks the two agree).

For the echo endpoints the values that come from the request must agree as well
(args, form, files, data, json, method, the header names, the path of url), so a key
that is present but filled differently fails too.
"""
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import zlib

import brotli
import pytest
import requests
from requests.auth import HTTPDigestAuth

from conftest import free_port, Server, hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(120)

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "serve.md")

# A deliberate difference: (method, httpbin path) -> the anchor of its line in
# docs/serve.md's "Deliberate differences from httpbin" list. Only these cases may
# answer differently; each is asserted to differ exactly as the docs say.
DIFFERENCES = {
    ("GET", "/redirect-to?url=http%3A%2F%2Fexample.com%2F"): "open-redirect",
    ("GET", "/base64/%%%%"): "base64-invalid",
    ("GET", "/image#*/*"): "image-any",
    ("GET", "/digest-auth/auth/u/p/SHA-1"): "digest-algorithm",
    ("GET", "/cookies/set?a=1#cross-site"): "cross-site-cookies",
    ("GET", "/response-headers?Location=%2Fx"): "response-headers-location",
    ("GET", "/response-headers?Cache-Control=public%2C+max-age%3D31536000#cross-site"):
        "cross-site-headers",
    ("OPTIONS", "/anything#preflight"): "preflight",
    ("GET", "/bytes/abc"): "not-a-number",
    ("GET", "/delay/abc"): "not-a-number",
    ("GET", "/status/600"): "status-range",
    ("GET", "/get?a=%ZZ"): "malformed-query",
}

# Content types that differ on purpose (the statuses and keys agree).
TYPE_DIFFERENCES = {
    ("GET", "/base64/aGVsbG8gd29ybGQ="): "base64-text",
}

# Endpoints newer than Debian's httpbin 0.7.0 (it answers 404): loopkit's answer is
# checked against the keys today's httpbin documents.
NEWER = {
    ("GET", "/json"): {"slideshow"},
}

# The status loopkit gives in each deliberate difference.
LOOPKIT_STATUS = {
    "open-redirect": 400,
    "base64-invalid": 400,
    "image-any": 200,
    "digest-algorithm": 400,
    "cross-site-cookies": 403,
    "response-headers-location": 400,
    "cross-site-headers": 403,
    "preflight": 204,
    "not-a-number": 400,
    "status-range": 400,
    "malformed-query": 400,
}

# Same status, but a value differs on purpose: (method, path) -> (anchor, a check of
# httpbin's answer and loopkit's: (status, headers, body) each).
FWD = {"X-Forwarded-For": "192.0.2.7"}
VALUE_DIFFERENCES = {
    ("GET", "/ip#forwarded"): ("forwarded-for", lambda h, l: (
        json.loads(h[2])["origin"] == "192.0.2.7" and json.loads(l[2])["origin"] == "127.0.0.1")),
    ("GET", "/get#cors"): ("cors-default", lambda h, l: (
        h[1].get("Access-Control-Allow-Origin") == "http://localhost:3000"
        and l[1].get("Access-Control-Allow-Origin") is None)),
}
VALUE_HEADERS = {"/ip#forwarded": FWD, "/get#cors": {"Origin": "http://localhost:3000"}}

BOUNDARY = "lkparityBOUNDARY7"


def multipart(fields, files):
    out = b""
    for name, value in fields:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                ).encode() + value + b"\r\n"
    for name, fname, ctype, value in files:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{fname}\"\r\nContent-Type: {ctype}\r\n\r\n").encode() + value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MP_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
MP_BODY = multipart([("a", b"1"), ("a", b"2"), ("text", "h\u00e9llo".encode())],
                    [("up", "u.txt", "text/plain", b"file text\n"),
                     ("bin", "b.bin", "application/x-thing", bytes(range(256)))])
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSONH = {"Content-Type": "application/json"}
CROSS = {"Sec-Fetch-Site": "cross-site"}

# (method, path, headers, body): path as httpbin names it; loopkit gets "/_" + path.
# A "#tag" after the path only tells cases apart; it is not sent.
CASES = [
    ("GET", "/get?a=1&a=2&b=x%20y", {"X-Test": "1"}, None),
    ("POST", "/get", {}, None),
    ("GET", "/anything", {}, None),
    ("GET", "/anything/deep/path?q=1", {}, None),
    ("POST", "/anything", JSONH, b'{"k": [1, 2], "s": "v"}'),
    ("POST", "/anything#not-json", {"Content-Type": "text/plain"}, b"plain text"),
    ("POST", "/anything#binary", {"Content-Type": "application/octet-stream"}, bytes(range(200, 256))),
    ("POST", "/anything#form", FORM, b"a=1&a=2&b=hello+world&c=%26%3C"),
    ("POST", "/anything#multipart", MP_HEADERS, MP_BODY),
    ("PUT", "/anything", JSONH, b"[1, 2, 3]"),
    ("PATCH", "/anything", FORM, b"x=y"),
    ("DELETE", "/anything", {}, None),
    ("TRACE", "/anything", {}, None),
    ("OPTIONS", "/anything", {}, None),
    ("OPTIONS", "/anything#preflight", {"Origin": "http://localhost:3000",
                                         "Access-Control-Request-Method": "PUT"}, None),
    ("POST", "/post", MP_HEADERS, MP_BODY),
    ("POST", "/post#json", JSONH, b'{"x": null}'),
    ("GET", "/post", {}, None),
    ("PUT", "/put", FORM, b"p=1"),
    ("POST", "/put", {}, None),
    ("PATCH", "/patch", JSONH, b'{"p": true}'),
    ("DELETE", "/delete", {}, None),
    ("GET", "/delete", {}, None),
    ("GET", "/headers", {"X-One": "1"}, None),
    ("GET", "/ip", {}, None),
    ("GET", "/user-agent", {"User-Agent": "parity/1"}, None),
    ("GET", "/uuid", {}, None),
    ("GET", "/status/200", {}, None),
    ("GET", "/status/201", {}, None),
    ("GET", "/status/302", {}, None),
    ("GET", "/status/404", {}, None),
    ("GET", "/status/418", {}, None),
    ("POST", "/status/500", {}, None),
    ("GET", "/status/abc", {}, None),
    ("GET", "/status/600", {}, None),
    ("GET", "/get?a=%ZZ", {}, None),
    ("GET", "/status/406", {}, None),  # httpbin's JSON of the media types it offers
    ("GET", "/status/200:1,500:0", {}, None),  # weighted: 500 never
    ("GET", "/status/201:0,201:2", {}, None),
    ("GET", "/status/200:0x10", {}, None),  # float() reads no hex: 400
    ("GET", "/bytes/abc", {}, None),
    ("GET", "/delay/abc", {}, None),
    ("GET", "/bytes/100", {}, None),
    ("GET", "/stream-bytes/100?chunk_size=10", {}, None),
    ("GET", "/stream/3", {}, None),
    ("GET", "/range/100", {}, None),
    ("GET", "/range/100#part", {"Range": "bytes=10-19"}, None),
    ("GET", "/range/100#past", {"Range": "bytes=200-300"}, None),
    ("GET", "/range/0", {}, None),
    ("GET", "/drip?duration=0&numbytes=3", {}, None),
    ("GET", "/drip?duration=0&numbytes=0", {}, None),
    ("GET", "/delay/0", {}, None),
    ("GET", "/links/3", {}, None),
    ("GET", "/links/3/1", {}, None),
    ("GET", "/redirect/2", {}, None),
    ("GET", "/relative-redirect/2", {}, None),
    ("GET", "/absolute-redirect/2", {}, None),
    ("GET", "/redirect-to?url=%2Fget", {}, None),
    ("GET", "/redirect-to?url=%2Fget&status_code=307", {}, None),
    ("GET", "/redirect-to?url=%2Fget&status_code=200", {}, None),  # not a redirect status: 302
    ("GET", "/redirect-to?url=%2Fget&status_code=600", {}, None),
    ("GET", "/redirect-to?URL=%2Fget&Status_Code=301", {}, None),  # names in any case
    ("GET", "/redirect-to?url=http%3A%2F%2Fexample.com%2F", {}, None),
    ("GET", "/response-headers?a=b&a=c&X-Y=z", {}, None),
    ("POST", "/response-headers?a=b", {}, None),
    ("GET", "/response-headers?Location=%2Fx", {}, None),
    ("GET", "/basic-auth/u/p", {}, None),
    ("GET", "/basic-auth/u/p#ok", {"Authorization": "Basic dTpw"}, None),
    ("GET", "/hidden-basic-auth/u/p", {}, None),
    ("GET", "/hidden-basic-auth/u/p#ok", {"Authorization": "Basic dTpw"}, None),
    ("GET", "/bearer", {}, None),
    ("GET", "/bearer#ok", {"Authorization": "Bearer tok"}, None),
    ("GET", "/digest-auth/auth/u/p", {}, None),
    ("GET", "/digest-auth/auth/u/p/SHA-1", {}, None),
    ("GET", "/cache", {}, None),
    ("GET", "/cache#conditional", {"If-None-Match": '"x"'}, None),
    ("GET", "/cache/60", {}, None),
    ("GET", "/etag/abc", {}, None),
    ("GET", "/etag/abc#match", {"If-None-Match": '"abc"'}, None),
    ("GET", "/etag/abc#precondition", {"If-Match": '"zzz"'}, None),
    ("GET", "/base64/aGVsbG8gd29ybGQ=", {}, None),
    ("GET", "/base64/%%%%", {}, None),
    ("GET", "/cookies", {"Cookie": "a=1; b=2"}, None),
    ("GET", "/cookies/set?a=1", {}, None),
    ("GET", "/cookies/set/k/v", {}, None),
    ("GET", "/cookies/set?a=1#cross-site", CROSS, None),
    ("GET", "/response-headers?Cache-Control=public%2C+max-age%3D31536000#cross-site", CROSS, None),
    ("GET", "/cookies/delete?a", {}, None),
    ("GET", "/json", {}, None),
    ("GET", "/html", {}, None),
    ("GET", "/xml", {}, None),
    ("GET", "/robots.txt", {}, None),
    ("GET", "/deny", {}, None),
    ("GET", "/encoding/utf8", {}, None),
    ("GET", "/forms/post", {}, None),
    ("GET", "/gzip", {}, None),
    ("GET", "/deflate", {}, None),
    ("GET", "/brotli", {}, None),
    ("GET", "/image", {"Accept": "image/webp"}, None),
    ("GET", "/image#svg", {"Accept": "image/svg+xml"}, None),
    ("GET", "/image#jpeg", {"Accept": "image/jpeg"}, None),
    ("GET", "/image#png", {"Accept": "image/png"}, None),
    ("GET", "/image#text", {"Accept": "text/plain"}, None),
    ("GET", "/image#*/*", {"Accept": "*/*"}, None),
    ("GET", "/image/png", {}, None),
    ("GET", "/image/jpeg", {}, None),
    ("GET", "/image/webp", {}, None),
    ("GET", "/image/svg", {}, None),
    ("GET", "/no-such-endpoint", {}, None),
]




class Peer:
    def __init__(self, host, port, prefix):
        self.host, self.port, self.prefix = host, port, prefix


@pytest.fixture(scope="module")
def httpbin(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("httpbin") / "httpbin.log", "wb")
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "httpbin.core", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "httpbin exited at start"
            assert time.monotonic() < deadline, "httpbin did not start listening"
            time.sleep(0.1)
    yield Peer("127.0.0.1", port, "")
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def loopkit(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("root")), ["--proto", "http", "-q"])
    yield Peer(s.host, s.port, "/_")
    assert s.alive()
    assert s.stop() == 0


def send(peer, method, path, headers, body):
    path = path.split("#")[0]
    c = http.client.HTTPConnection(peer.host, peer.port, timeout=20)
    try:
        c.request(method, peer.prefix + path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        enc = (r.getheader("Content-Encoding") or "").lower()
        if enc == "gzip":
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            data = zlib.decompress(data)
        elif enc == "br":
            data = brotli.decompress(data)
        return r.status, r.msg, data
    finally:
        c.close()


def is_json(headers):
    return (headers.get("Content-Type") or "").startswith("application/json")


def first_json(headers, data):
    """The JSON of an answer: /stream/N sends JSON lines, the first is compared."""
    text = data.decode()
    return json.loads(text.split("\n", 1)[0] if text.count("\n") > 1 and not text.startswith("{\n")
                      else text)


def compare_echo(hb, lk, path):
    for key in ("args", "form", "files", "data", "json", "method"):
        if key in hb:
            assert lk[key] == hb[key], (key, hb[key], lk[key])
    if "headers" in hb:
        # The same names, capitalised and sorted alike, with the same values (Host
        # differs by its port; the rest are the request's own).
        hh = [(k, v) for k, v in hb["headers"].items() if k != "Host"]
        lh = [(k, v) for k, v in lk["headers"].items() if k != "Host"]
        assert lh == hh, (hh, lh)
    if "url" in hb:
        hu, lu = urllib.parse.urlsplit(hb["url"]), urllib.parse.urlsplit(lk["url"])
        assert lu.path == "/_" + hu.path and lu.query == hu.query, (hb["url"], lk["url"])


@pytest.mark.parametrize("method,path,headers,body", CASES,
                         ids=[f"{m} {p}" for m, p, _, _ in CASES])
def test_same_status_and_keys(httpbin, loopkit, method, path, headers, body):
    hs, hh, hd = send(httpbin, method, path, headers, body)
    ls, lh, ld = send(loopkit, method, path, headers, body)
    diff = DIFFERENCES.get((method, path))
    if diff:
        assert hs != LOOPKIT_STATUS[diff], f"httpbin now agrees with loopkit ({hs}): drop {diff}"
        assert ls == LOOPKIT_STATUS[diff], (diff, ls, ld[:300])
        return
    if (method, path) in NEWER:
        assert hs == 404, f"Debian's httpbin has {path} now: compare with it"
        assert ls == 200 and set(json.loads(ld)) == NEWER[(method, path)], ld[:300]
        return
    assert ls == hs, f"httpbin {hs}, loopkit {ls}: {ld[:300]!r}"
    # Redirects: the same place, under /_/.
    hloc, lloc = hh.get("Location"), lh.get("Location")
    if hloc:
        hp, lp = urllib.parse.urlsplit(hloc), urllib.parse.urlsplit(lloc or "")
        assert lp.path == "/_" + hp.path.replace("/redirect/1", "/get") or lp.path == hp.path, (hloc, lloc)
        assert bool(hp.netloc) == bool(lp.netloc), (hloc, lloc)
    if method == "OPTIONS":
        allow = lambda h: {m.strip() for m in (h.get("Allow") or "").split(",")}  # noqa: E731
        assert allow(lh) == allow(hh), (hh.get("Allow"), lh.get("Allow"))
    if hs in (200, 206) and hd:
        htype = (hh.get("Content-Type") or "").split(";")[0]
        ltype = (lh.get("Content-Type") or "").split(";")[0]
        if (method, path) in TYPE_DIFFERENCES:
            assert ltype != htype
        else:
            assert ltype == htype, (htype, ltype)
    if is_json(hh) and hd.strip():
        hj, lj = first_json(hh, hd), first_json(lh, ld)
        if isinstance(hj, dict):
            assert set(lj) == set(hj), f"keys: httpbin {sorted(hj)}, loopkit {sorted(lj)}"
            if "slideshow" in hj:
                assert set(lj["slideshow"]) == set(hj["slideshow"])
            compare_echo(hj, lj, path)


def test_digest_auth_with_requests_and_curl(httpbin, loopkit):
    """Real Digest clients log in to both: python3-requests and curl, MD5 and SHA-256
    (qop=auth, what they implement)."""
    for alg in ("MD5", "SHA-256"):
        for peer in (httpbin, loopkit):
            url = f"http://{peer.host}:{peer.port}{peer.prefix}/digest-auth/auth/usr/pw/{alg}"
            r = requests.get(url, auth=HTTPDigestAuth("usr", "pw"), timeout=10)
            assert r.status_code == 200, (peer.prefix, alg, r.status_code, r.headers)
            assert r.json() == {"authenticated": True, "user": "usr"}
            bad = requests.get(url, auth=HTTPDigestAuth("usr", "wrong"), timeout=10)
            assert bad.status_code == 401, (peer.prefix, alg, bad.status_code)
            p = subprocess.run(["curl", "-sS", "--noproxy", "*", "--digest", "-u", "usr:pw", "-o", "-",
                                "-w", "\n%{http_code}", url], capture_output=True, timeout=15)
            body, _, code = p.stdout.decode().rpartition("\n")
            assert code == "200" and json.loads(body)["user"] == "usr", (peer.prefix, alg, p.stdout, p.stderr)


def _digest_header(challenge, method, uri, user, pw, body, qop, alg, nc="00000001"):
    """An RFC 7616 response computed here, for what no common client sends (auth-int,
    -sess); both servers judge it, so a mistake here fails on httpbin too."""
    import hashlib
    h = lambda s: hashlib.new({"MD5": "md5", "SHA-256": "sha256"}[alg.replace("-sess", "")],  # noqa: E731
                              s.encode() if isinstance(s, str) else s).hexdigest()
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    realm, nonce, cnonce = params["realm"], params["nonce"], "0a4f113b"
    ha1 = h(f"{user}:{realm}:{pw}")
    if alg.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}:{h(body)}") if qop == "auth-int" else h(f"{method}:{uri}")
    resp = h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'algorithm={alg}, qop={qop}, nc={nc}, cnonce="{cnonce}", response="{resp}", '
            f'opaque="{params.get("opaque", "")}"')


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_digest_auth_int_both_agree(httpbin, loopkit, alg):
    for peer in (httpbin, loopkit):
        path = f"/digest-auth/auth-int/usr/pw/{alg}"
        s, h, _ = send(peer, "GET", path, {}, None)
        assert s == 401, (peer.prefix, s)
        auth = _digest_header(h["WWW-Authenticate"], "GET", peer.prefix + path, "usr", "pw", b"", "auth-int",
                              alg)
        s, _, d = send(peer, "GET", path, {"Authorization": auth}, None)
        assert s == 200 and json.loads(d)["user"] == "usr", (peer.prefix, s, d)
        s, _, _ = send(peer, "GET", path, {"Authorization": auth.replace('username="usr"', 'username="eve"')},
                       None)
        assert s == 401, (peer.prefix, s)


def test_digest_sess_and_stale_after(loopkit):
    """RFC 7616's -sess variant; STALE_AFTER: a nonce used more often is stale
    (stale=TRUE, a fresh nonce), counted by the client's nc, without cookies."""
    path = "/digest-auth/auth/usr/pw/SHA-256-sess/1"
    s, h, _ = send(loopkit, "GET", path, {}, None)
    ch = h["WWW-Authenticate"]
    assert s == 401 and "algorithm=SHA-256-sess" in ch and "stale=FALSE" in ch, ch
    assert h.get("Set-Cookie") is None
    auth = _digest_header(ch, "GET", "/_" + path, "usr", "pw", b"", "auth", "SHA-256-sess")
    s, _, d = send(loopkit, "GET", path, {"Authorization": auth}, None)
    assert s == 200, d
    again = _digest_header(ch, "GET", "/_" + path, "usr", "pw", b"", "auth", "SHA-256-sess", nc="00000002")
    s, h, _ = send(loopkit, "GET", path, {"Authorization": again}, None)
    assert s == 401 and "stale=TRUE" in h["WWW-Authenticate"], h


@pytest.mark.parametrize("method,path", sorted(VALUE_DIFFERENCES))
def test_value_differences(httpbin, loopkit, method, path):
    """The documented differences of value: httpbin answers one way, loopkit the other."""
    anchor, check = VALUE_DIFFERENCES[(method, path)]
    h = send(httpbin, method, path, VALUE_HEADERS[path], None)
    lk = send(loopkit, method, path, VALUE_HEADERS[path], None)
    assert h[0] == lk[0] == 200, (h[0], lk[0])
    assert check(h, lk), (anchor, h[1].items(), h[2][:300], lk[1].items(), lk[2][:300])


def test_differences_are_the_documented_ones():
    """docs/serve.md's list of deliberate differences names exactly DIFFERENCES."""
    with open(DOCS) as f:
        text = f.read()
    section = text.split("### Deliberate differences from httpbin", 1)[1].split("\n## ", 1)[0]
    anchors = set(re.findall(r"<a id=\"httpbin-([a-z0-9-]+)\"></a>", section))
    listed = (set(DIFFERENCES.values()) | set(TYPE_DIFFERENCES.values())
              | {a for a, _ in VALUE_DIFFERENCES.values()})
    assert anchors == listed, anchors ^ listed
