"""A web page must not attack other localhost apps through loopkit (issue 11).

Cookies ignore ports: a Set-Cookie from loopkit on localhost reaches every local app.
So the endpoints that would send one (and Clear-Site-Data, WWW-Authenticate) refuse
requests that a web page of another origin made (Sec-Fetch-Site other than
same-origin or none); clients that are not browsers send no Sec-Fetch-Site and are
served. CORS: bare --cors is read-only for any origin; writes need the origin named
with --cors-origin; private-network access is never granted to any origin on a
writable server. Headless Chromium checks the browser's side: a page on another
origin cannot write, and a control run with --cors-origin can (so the test can fail).
"""
import json
import os
import subprocess
import time

import urllib.parse

import pytest

from conftest import exchange
from test_browser import Chromium, need_chromium

COOKIE = "sid%3Dattacker%3B%20Path%3D%2F"


@pytest.fixture
def site(root):
    (root / "index.html").write_bytes(b"original\n")
    return root


@pytest.mark.parametrize("sfs", ["cross-site", "same-site"])
@pytest.mark.parametrize("target", [
    f"/_/response-headers?Set-Cookie={COOKIE}",
    "/_/response-headers?Clear-Site-Data=%22cookies%22",
    "/_/response-headers?WWW-Authenticate=Basic",
    "/_/cookies/set?sid=attacker",
    "/_/cookies/set/sid/attacker",
    "/_/cookies/delete?sid",
])
def test_cross_site_cannot_plant_cookies(server, site, sfs, target):
    r = exchange(server, "GET", target, {"Sec-Fetch-Site": sfs, "Origin": "https://evil.example"})
    assert r.status == 403, r
    assert not r.has("set-cookie") and not r.has("clear-site-data") and not r.has("www-authenticate"), r
    assert "web page" in r.json()["error"] and sfs in r.json()["error"], r.json()


BROWSER_HEADERS = [
    ("Cache-Control", "public, max-age=31536000"), ("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ("Content-Encoding", "gzip"), ("Content-Range", "bytes 0-1/2"),
    ("Service-Worker-Allowed", "/"), ("Alt-Svc", 'h2="evil.example:443"'),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("NEL", '{"report_to":"x","max_age":31536000}'), ("Report-To", '{"group":"x"}'),
    ("Reporting-Endpoints", 'x="https://evil.example/r"'),
    ("Link", "<http://evil.example/x.css>; rel=stylesheet"), ("Proxy-Authenticate", "Basic"),
    ("Accept-CH", "Sec-CH-UA-Full-Version-List"), ("X-Frame-Options", "ALLOWALL"),
    # hostile pass of 2026-12-05: Chromium reads these for the whole origin or the page
    ("Set-Login", "logged-in"), ("Origin-Trial", "AAAA"), ("Supports-Loading-Mode", "credentialed-prerender"),
    ("Speculation-Rules", '"/rules.json"'), ("No-Vary-Search", "params"),
    ("Attribution-Reporting-Register-Source", '{"destination":"https://evil.example"}'),
    ("Document-Policy", "force-load-at-top"),
]


@pytest.mark.parametrize("sfs", ["cross-site", "same-site"])
@pytest.mark.parametrize("name,value", BROWSER_HEADERS)
def test_cross_site_cannot_set_browser_meaningful_headers(server, site, sfs, name, value):
    """The hostile review's #9: headers that outlive the answer or change how the browser
    treats the origin are refused to a page of another site (403), as cookies are."""
    q = urllib.parse.urlencode({name: value})
    r = exchange(server, "GET", f"/_/response-headers?{q}", {"Sec-Fetch-Site": sfs})
    assert r.status == 403, r
    assert not r.has(name), r
    assert "web page" in r.json()["error"] and name in r.json()["error"], r.json()
    # Typed by the user, or a client that is no browser: set as asked.
    r = exchange(server, "GET", f"/_/response-headers?{q}", {"Sec-Fetch-Site": "none"})
    assert r.status == 200 and r.header(name) == value, r


@pytest.mark.parametrize("q", ["X=%00", "X=a%00b", "X%00Y=1", "X=%0d%0aSet-Cookie:%20a=b",
                               "X=a%0Ab", "X=%1b[31m", "X=%7f"])
def test_response_headers_refuse_nul_and_control_bytes(server, site, q):
    r = exchange(server, "GET", f"/_/response-headers?{q}")
    assert r.status == 400, r
    assert not r.has("x") and not r.has("set-cookie"), r
    assert b"\x00" not in r.head_bytes, r.head_bytes
    assert "control characters" in r.json()["error"] or "tokens" in r.json()["error"], r.json()


def test_trailers_refuse_nul(server, site):
    r = exchange(server, "GET", "/_/trailers?X=a%00b")
    assert r.status == 400, r
    assert "control characters" in r.json()["error"], r.json()


@pytest.mark.parametrize("sfs", [None, "none", "same-origin"])
def test_typed_or_same_origin_or_non_browser_may_set_cookies(server, site, sfs):
    headers = {"Sec-Fetch-Site": sfs} if sfs else {}
    r = exchange(server, "GET", f"/_/response-headers?Set-Cookie={COOKIE}", headers)
    assert r.status == 200 and r.header("set-cookie") == "sid=attacker; Path=/", r
    r = exchange(server, "GET", "/_/cookies/set?sid=mine", headers)
    assert r.status == 302 and r.header("set-cookie") == "sid=mine; Path=/", r


def test_cookie_bomb_refused(server, site):
    big = "x" * 3000
    r = exchange(server, "GET", f"/_/cookies/set?a={big}&b={big}")
    assert r.status == 400 and not r.has("set-cookie"), r
    assert "at most 4096" in r.json()["error"]
    r = exchange(server, "GET", f"/_/response-headers?Set-Cookie=a%3D{big}&Set-Cookie=b%3D{big}")
    assert r.status == 400 and not r.has("set-cookie"), r
    # Just under the limit is fine.
    r = exchange(server, "GET", f"/_/cookies/set?a={'y' * 4000}")
    assert r.status == 302 and r.has("set-cookie"), r


def preflight(server, origin, method, pna=False):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if pna:
        h["Access-Control-Request-Private-Network"] = "true"
    return exchange(server, "OPTIONS", "/index.html", h)


def test_bare_cors_with_write_never_lets_another_origin_write(start, site):
    s = start("--cors", "--write")
    r = preflight(s, "https://evil.example", "PUT", pna=True)
    assert r.status == 204
    assert "PUT" not in r.header("access-control-allow-methods", "") and "DELETE" not in r.header(
        "access-control-allow-methods", ""), r
    assert not r.has("access-control-allow-private-network"), r
    # Without the browser's cooperation too: the write itself is refused.
    r = exchange(s, "PUT", "/index.html", {"Origin": "https://evil.example"}, body=b"pwned\n")
    assert r.status == 403 and "--cors-origin" in r.text, r
    r = exchange(s, "DELETE", "/index.html", {"Origin": "http://127.0.0.1:1"})
    assert r.status == 403, r
    assert (site / "index.html").read_bytes() == b"original\n"
    # Reading stays open to any origin.
    r = exchange(s, "GET", "/index.html", {"Origin": "https://evil.example"})
    assert r.status == 200 and r.header("access-control-allow-origin") == "*", r


def test_bare_cors_read_only_grants_private_network(start, site):
    s = start("--cors")
    r = preflight(s, "https://app.example", "GET", pna=True)
    assert r.header("access-control-allow-private-network") == "true", r


def test_named_origin_may_write(start, site):
    s = start("--cors-origin", "https://app.example:8443", "--write")
    r = preflight(s, "https://app.example:8443", "PUT", pna=True)
    assert "PUT" in r.header("access-control-allow-methods"), r
    assert r.header("access-control-allow-origin") == "https://app.example:8443", r
    assert r.header("access-control-allow-private-network") == "true", r
    r = exchange(s, "PUT", "/index.html", {"Origin": "https://app.example:8443"}, body=b"new\n")
    assert r.status == 204 and r.header("access-control-allow-origin") == "https://app.example:8443", r
    assert "origin" in r.tokens("vary")
    assert (site / "index.html").read_bytes() == b"new\n"
    # Another origin is still refused.
    r = exchange(s, "PUT", "/index.html", {"Origin": "https://app.example"}, body=b"pwned\n")
    assert r.status == 403, r


def test_own_pages_and_plain_clients_may_write(start, site):
    s = start("--write")
    r = exchange(s, "PUT", "/index.html", {"Origin": f"http://127.0.0.1:{s.port}"}, body=b"a\n")
    assert r.status == 204, r
    r = exchange(s, "PUT", "/index.html", body=b"b\n")  # curl, scripts: no Origin
    assert r.status == 204, r
    r = exchange(s, "PUT", "/index.html", {"Origin": "null"}, body=b"c\n")  # sandboxed, file://
    assert r.status == 403, r
    assert (site / "index.html").read_bytes() == b"b\n"


@pytest.mark.parametrize("origin", [
    "http://127.0.0.2:{port}",      # another loopback address: another user's server may hold it
    "http://[::1]:{port}",
    "http://localhost:{port}",      # another origin to the browser, whatever resolves it
    "http://app.localhost:{port}",
    "https://127.0.0.1:{port}",     # another scheme
    "http://127.0.0.1:{other}",     # another port
    "http://127.0.0.1",             # port 80
])
def test_own_origin_is_scheme_host_and_port_of_the_request(start, site, origin):
    """The hostile review's #10: an Origin counts as this server's own only when scheme,
    host and port are what the request reached it as (its Host), not any allowed host
    with our port."""
    s = start("--write")
    o = origin.format(port=s.port, other=s.port + 1 if s.port < 65535 else 1)
    r = exchange(s, "PUT", "/index.html", {"Origin": o}, body=b"pwned\n")
    assert r.status == 403, r
    r = exchange(s, "DELETE", "/index.html", {"Origin": o})
    assert r.status == 403, r
    r = exchange(s, "MKCOL", "/d", {"Origin": o})
    assert r.status == 403, r
    assert (site / "index.html").read_bytes() == b"original\n" and not (site / "d").exists()
    # The same origin is our own when the request reached us under that name.
    if o.startswith("http://localhost:"):
        r = exchange(s, "PUT", "/index.html", {"Origin": o, "Host": f"localhost:{s.port}"},
                     body=b"mine\n")
        assert r.status == 204, r


def test_own_origin_with_curl(start, site):
    s = start("--write")
    src = site.parent / "up-src.txt"
    src.write_bytes(b"from curl\n")
    url = f"http://127.0.0.1:{s.port}/up.txt"
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(src),
                          "-H", f"Origin: http://127.0.0.2:{s.port}", url],
                         capture_output=True, timeout=10)
    assert out.stdout == b"403", out
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(src),
                          "-H", f"Origin: http://127.0.0.1:{s.port}", url],
                         capture_output=True, timeout=10)
    assert out.stdout == b"201", out


def test_bad_cors_origin_is_a_usage_error(root):
    import subprocess
    from conftest import LOOPKIT
    p = subprocess.run([LOOPKIT, "serve", str(root), "--port", "0", "--cors-origin", "https://a.example/x"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "without a path" in p.stderr, p.stderr


def test_star_origin_with_write_warns(start, site):
    s = start("--cors-origin", "*", "--write")
    assert "ANY web page you visit can write" in s.stderr()


# --- headless Chromium: a page of another origin tries to write --------------------------

EVIL_PAGE = """<!DOCTYPE html><meta charset=utf-8><pre id=result></pre><script>
fetch(%s, {method: 'PUT', body: 'pwned by a page\\n'})
  .then(r => document.getElementById('result').textContent = 'done: status ' + r.status)
  .catch(e => document.getElementById('result').textContent = 'done: blocked ' + e.name);
</script>"""


def run_evil_page(start, root, tmp_path, target_args, evil_args=()):
    """The victim (serve TARGET_ARGS --write over root) and a page on another loopkit
    (started with EVIL_ARGS) that tries to PUT the victim's index.html from Chromium.
    Returns (victim, evil, the page's result text)."""
    victim = start(*target_args, "--write", root_dir=str(root))
    evil_root = tmp_path / "evil"
    evil_root.mkdir()
    (evil_root / "evil.html").write_text(EVIL_PAGE % json.dumps(victim.url + "index.html"))
    evil = start(*evil_args, root_dir=str(evil_root))
    browser = Chromium(need_chromium(), str(tmp_path / "chromium.log"))
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"}, timeout=15)
        session = browser.call("Target.attachToTarget",
                               {"targetId": target["targetId"], "flatten": True})["sessionId"]
        browser.call("Page.navigate", {"url": evil.url + "evil.html"}, session)
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            text = browser.evaluate(session, "(document.getElementById('result') || {}).textContent || ''") or ""
            if text.startswith("done"):
                break
            time.sleep(0.1)
    finally:
        browser.close()
    return victim, evil, text


def test_chromium_page_of_another_origin_cannot_write(start, root, tmp_path):
    (root / "index.html").write_bytes(b"original\n")
    victim, evil, text = run_evil_page(start, root, tmp_path, ["--cors"])
    assert text.startswith("done: blocked"), text
    assert (root / "index.html").read_bytes() == b"original\n"


def test_chromium_control_named_origin_can_write(start, root, tmp_path):
    """The same page, its origin named: the write goes through, so the test above can
    fail."""
    (root / "index.html").write_bytes(b"original\n")
    import socket
    # The evil server's port is not known before it starts: name the origin by a
    # second start with a fixed free port.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    _, _, text = run_evil_page(start, root, tmp_path, ["--cors-origin", f"http://127.0.0.1:{port}"],
                               ["--port", str(port)])
    assert text == "done: status 204", text
    assert (root / "index.html").read_bytes() == b"pwned by a page\n"
