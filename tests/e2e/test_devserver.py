"""Dev-server basics (issue 12 item 3): --follow-symlinks, --cache, --404, --clean-urls,
--header, listings on demand (?listing=1, Accept: application/json) and in natural
order. Each test fails on the build before them (unknown flags exit 2; listings were
bytewise; an index always won)."""
import http.client
import json
import os
import re
import subprocess

import pytest

from conftest import LOOPKIT, exchange, hard_timeout_fixture, raw

_hard_timeout = hard_timeout_fixture(30)


def usage_error(root, *args):
    p = subprocess.run([LOOPKIT, "serve", str(root), "--port", "0", *args], capture_output=True,
                       timeout=10)
    return p.returncode, p.stderr.decode()


# ---- --follow-symlinks ---------------------------------------------------------------------

@pytest.fixture
def linked(root, tmp_path):
    """A workspace as pnpm lays it out: node_modules/lib -> a package outside DIR, and
    node_modules/dep -> .pnpm/dep (hidden, inside)."""
    outside = tmp_path / "packages" / "lib"
    outside.mkdir(parents=True)
    (outside / "index.js").write_bytes(b"export default 1;\n")
    nm = root / "node_modules"
    (nm / ".pnpm" / "dep").mkdir(parents=True)
    (nm / ".pnpm" / "dep" / "dep.js").write_bytes(b"dep\n")
    os.symlink(str(outside), nm / "lib")
    os.symlink(".pnpm/dep", nm / "dep")
    (root / "inside.txt").write_bytes(b"in\n")
    os.symlink("inside.txt", root / "alias.txt")
    return root


def test_links_out_of_dir_are_refused_and_said_once(start, linked):
    s = start()
    for _ in range(3):
        assert exchange(s, "GET", "/node_modules/lib/index.js").status == 404
    listing = exchange(s, "GET", "/node_modules/", {"Accept": "application/json"}).json()
    assert [e["name"] for e in listing["entries"]] == []  # lib leads out, dep to a hidden name
    assert exchange(s, "GET", "/alias.txt").body == b"in\n"  # a link inside DIR works
    lines = [ln for ln in s.stderr().splitlines() if "--follow-symlinks" in ln]
    assert len(lines) == 1, s.stderr()
    assert "/node_modules/lib" in lines[0] and "packages/lib" in lines[0] and "out of the served" in lines[0]


def test_follow_symlinks_serves_them(start, linked):
    s = start("--follow-symlinks")
    r = exchange(s, "GET", "/node_modules/lib/index.js")
    assert r.status == 200 and r.body == b"export default 1;\n", r
    assert exchange(s, "GET", "/node_modules/dep/dep.js").body == b"dep\n"
    names = [e["name"] for e in exchange(s, "GET", "/node_modules/", {"Accept": "application/json"})
             .json()["entries"]]
    assert names == ["dep", "lib"], names
    # The names in the URL are still checked: a dotfile stays hidden.
    assert exchange(s, "GET", "/node_modules/.pnpm/dep/dep.js").status == 404
    assert "--follow-symlinks" not in s.stderr()


# ---- --cache -------------------------------------------------------------------------------

def test_cache_default_is_no_cache_and_304_keeps_it(start, root):
    (root / "a.js").write_bytes(b"x")
    s = start()
    r = exchange(s, "GET", "/a.js")
    assert r.header("cache-control") == "no-cache", r
    r2 = exchange(s, "GET", "/a.js", {"If-None-Match": r.header("etag")})
    assert r2.status == 304 and r2.header("cache-control") == "no-cache", r2


@pytest.mark.parametrize("arg,want", [("60", "max-age=60"), ("no", "no-store"), ("0", "no-cache"),
                                      ("315360000", "max-age=315360000")])
def test_cache_flag(start, root, arg, want):
    (root / "big.bin").write_bytes(b"b" * 200000)  # not from the small-file cache
    (root / "s.css").write_bytes(b"a{}")
    s = start("--cache", arg)
    assert exchange(s, "GET", "/big.bin").header("cache-control") == want
    assert exchange(s, "GET", "/s.css").header("cache-control") == want
    assert exchange(s, "GET", "/_/get").header("cache-control") is None


@pytest.mark.parametrize("bad", ["abc", "-1", "315360001", "1h"])
def test_cache_bad_values_are_usage_errors(root, bad):
    rc, err = usage_error(root, "--cache", bad)
    assert rc == 2 and f"--cache {bad}:" in err and "want SECS (0-315360000) or no" in err, err


# ---- --404 ---------------------------------------------------------------------------------

def test_custom_404_page(start, root):
    (root / "errors").mkdir()
    (root / "errors" / "404.html").write_bytes(b"<h1>lost</h1>\n")
    (root / "f.txt").write_bytes(b"f")
    s = start("--404", "errors/404.html")
    for target in ("/nope", "/dir/nope.js", "/f.txt/", "/.env"):
        r = exchange(s, "GET", target)
        assert r.status == 404 and r.body == b"<h1>lost</h1>\n", (target, r)
        assert r.header("content-type") == "text/html; charset=utf-8"
    r = exchange(s, "HEAD", "/nope")
    assert r.status == 404 and r.body == b"" and r.header("content-length") == "14"
    assert exchange(s, "GET", "/_/nope").json()["status"] == 404  # the API keeps its JSON
    assert exchange(s, "GET", "/f.txt").body == b"f"
    # Edited pages show at once: the file is read at each 404.
    (root / "errors" / "404.html").write_bytes(b"new\n")
    assert exchange(s, "GET", "/nope").body == b"new\n"


@pytest.mark.parametrize("arg", ["missing.html", "../outside.html", "sub"])
def test_404_page_must_be_a_file_under_dir(root, tmp_path, arg):
    (tmp_path / "outside.html").write_bytes(b"x")
    (root / "sub").mkdir()
    rc, err = usage_error(root, "--404", arg)
    assert rc == 2 and "--404" in err and "under" in err, err


# ---- --clean-urls --------------------------------------------------------------------------

@pytest.fixture
def pages(root):
    (root / "about.html").write_bytes(b"about\n")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_bytes(b"docs\n")
    (root / "index.html").write_bytes(b"home\n")
    (root / "both").mkdir()
    (root / "both.html").write_bytes(b"both page\n")
    return root


def test_clean_urls(start, pages):
    s = start("--clean-urls")
    r = exchange(s, "GET", "/about")
    assert r.status == 200 and r.body == b"about\n" and r.header("content-type").startswith("text/html"), r
    r = exchange(s, "GET", "/about.html?x=1")
    assert r.status == 301 and r.header("location") == "/about?x=1", r
    r = exchange(s, "GET", "/docs/index.html")
    assert r.status == 301 and r.header("location") == "/docs/", r
    assert exchange(s, "GET", "/index.html").header("location") == "/"
    # A name that is also a directory: the directory keeps /both, the page its .html.
    assert exchange(s, "GET", "/both").status == 301 and exchange(s, "GET", "/both").header("location") == "/both/"
    assert exchange(s, "GET", "/both.html").body == b"both page\n"
    assert exchange(s, "GET", "/missing").status == 404
    # curl follows the redirect to the clean URL.
    p = subprocess.run(["curl", "-sS", "-L", "--noproxy", "*", s.url + "about.html"], capture_output=True,
                       timeout=10)
    assert p.stdout == b"about\n"


def test_without_clean_urls_nothing_changes(start, pages):
    s = start()
    assert exchange(s, "GET", "/about").status == 404
    assert exchange(s, "GET", "/about.html").status == 200


# ---- --header ------------------------------------------------------------------------------

def test_header_flag_on_files_listings_and_404(start, pages):
    (pages / "d").mkdir()
    s = start("--header", "Cross-Origin-Opener-Policy: same-origin",
              "--header", "Cross-Origin-Embedder-Policy:require-corp", "--404", "about.html")
    for target in ("/about.html", "/d/", "/missing"):
        r = exchange(s, "GET", target)
        assert r.header("cross-origin-opener-policy") == "same-origin", (target, r)
        assert r.header("cross-origin-embedder-policy") == "require-corp", (target, r)
    r = exchange(s, "GET", "/about.html")
    r304 = exchange(s, "GET", "/about.html", {"If-None-Match": r.header("etag")})
    assert r304.status == 304 and r304.header("cross-origin-opener-policy") == "same-origin"
    assert exchange(s, "GET", "/_/get").header("cross-origin-opener-policy") is None


@pytest.mark.parametrize("bad,why", [
    ("NoColon", "want 'NAME: VALUE'"),
    ("Bad Name: x", "header names must be tokens"),
    ("Content-Length: 5", "frames the message"),
    ("Transfer-Encoding: gzip", "frames the message"),
    ("Content-Type: text/plain", ": Content-Type is set from the file's name"),
    ("Cache-Control: max-age=1", ": Cache-Control is set by --cache (--cache SECS, 0 or no)"),
    ("X-Ctl: a\x01b", "free of control characters"),
    (": empty", "needs a name"),
])
def test_header_flag_is_validated(root, bad, why):
    rc, err = usage_error(root, "--header", bad)
    assert rc == 2 and "--header" in err and why in err, err


# ---- listings ------------------------------------------------------------------------------

def test_listing_on_demand_over_an_index(start, pages):
    s = start()
    assert exchange(s, "GET", "/docs/").body == b"docs\n"
    r = exchange(s, "GET", "/docs/?listing=1")
    assert r.status == 200 and b"Index of /docs/" in r.body and b"index.html" in r.body, r
    assert b"Index of /docs/" in exchange(s, "GET", "/docs/?listing").body
    r = exchange(s, "GET", "/docs/", {"Accept": "application/json"})
    assert r.json()["entries"][0]["name"] == "index.html"


def test_listing_sorts_naturally_directories_first(start, root):
    d = root / "n"
    d.mkdir()
    for name in ["a10", "a2", "a1", "B", "c", "file-9.txt", "file-10.txt"]:
        (d / name).write_bytes(b"")
    for name in ["zdir", "adir", "v10", "v9"]:
        (d / name).mkdir()
    s = start()
    names = [e["name"] for e in exchange(s, "GET", "/n/", {"Accept": "application/json"}).json()["entries"]]
    assert names == ["adir", "v9", "v10", "zdir", "B", "a1", "a2", "a10", "c", "file-9.txt", "file-10.txt"]
    html = exchange(s, "GET", "/n/").body.decode()
    assert re.findall(r'href="\./([^"]+)"', html) == ["adir/", "v9/", "v10/", "zdir/", "B", "a1", "a2", "a10",
                                                     "c", "file-9.txt", "file-10.txt"]


def test_big_listing_streams_in_many_chunks(start, root):
    d = root / "many"
    d.mkdir()
    for i in range(5000):
        (d / f"entry-{i}.txt").write_bytes(b"")
    s = start()
    c = http.client.HTTPConnection(s.host, s.port, timeout=10)
    c.request("GET", "/many/", headers={"Accept": "application/json"})
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    j = json.loads(r.read())
    assert [e["name"] for e in j["entries"]] == [f"entry-{i}.txt" for i in range(5000)]
    c.request("GET", "/many/")  # the same connection goes on
    r = c.getresponse()
    html = r.read().decode()
    c.close()
    assert html.count("<tr><td><a href=\"./") == 5000 and html.endswith("</html>\n")
    out = raw(s, b"GET /many/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    body = out.partition(b"\r\n\r\n")[2]
    sizes = re.findall(rb"(?:^|\r\n)([0-9a-f]+)\r\n", body[:40])
    assert sizes and body.endswith(b"\r\n0\r\n\r\n")


def test_listing_to_an_http10_client_is_close_delimited(start, root):
    (root / "x.txt").write_bytes(b"x")
    s = start()
    out = raw(s, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower() and b"keep-alive" not in head.lower(), head
    assert body.startswith(b"<!DOCTYPE html>") and body.endswith(b"</html>\n") and b"x.txt" in body
