"""End-to-end tests of file serving: types, validators, conditional requests, ranges,
directories and listings, path safety, dotfiles, --spa, --cors, --write and the
access log."""
import calendar
import email.utils
import hashlib
import html.parser
import json
import os
import stat
import re
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import (Conn, assert_alive, curl, curl_req, exchange, hard_timeout_fixture,
                      httpc, parse_responses, raw, reqbytes, wait_for, write_tree)

_hard_timeout = hard_timeout_fixture(25)

MTIME_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z
SECRET = b"TOP-SECRET-outside-root-7f3a9c"
PASSWD_MARK = b"root:x:0:0"


def set_mtime(path, ns=MTIME_NS):
    os.utime(path, ns=(ns, ns))


def httpdate(ts):
    return email.utils.formatdate(ts, usegmt=True)


def etag_of(path):
    st = os.stat(path)
    return '"%x-%x-%x"' % (st.st_ino, st.st_size, st.st_mtime_ns)


@pytest.fixture
def outside(root):
    """A secret file and a directory beside the root (outside it)."""
    base = root.parent
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outdir").mkdir()
    (base / "outdir" / "s.txt").write_bytes(SECRET)
    return base


TYPES = {
    "page.html": ("text/html", True),
    "style.css": ("text/css", True),
    "app.js": (("text/javascript", "application/javascript"), True),
    "data.json": ("application/json", None),
    "notes.txt": ("text/plain", True),
    "img.png": ("image/png", False),
    "pic.jpg": ("image/jpeg", False),
    "logo.svg": ("image/svg+xml", None),
    "mod.wasm": ("application/wasm", False),
    "blob.unknownext": ("application/octet-stream", False),
    "UPPER.HTML": ("text/html", True),
}


@pytest.mark.parametrize("name", sorted(TYPES))
def test_content_type_and_exact_bytes(server, root, name):
    data = os.urandom(300) if not name.endswith(("html", "HTML", "css", "js", "txt")) \
        else f"content of {name}\n".encode() * 20
    (root / name).write_bytes(data)
    r = curl_req(server, "/" + name)
    assert r.status == 200
    assert r.body == data
    want, charset = TYPES[name]
    want = (want,) if isinstance(want, str) else want
    ctype = r.header("content-type", "")
    mime = ctype.split(";")[0].strip().lower()
    assert mime in want, (name, ctype)
    if charset is True:
        assert "charset=utf-8" in ctype.lower().replace(" ", ""), ctype
    if charset is False:
        assert "charset" not in ctype.lower(), ctype
    assert r.header("content-length") == str(len(data))
    assert r.header("accept-ranges") == "bytes"
    assert r.header("x-content-type-options") == "nosniff"


def test_empty_file(server, root):
    (root / "empty.txt").write_bytes(b"")
    r = exchange(server, "GET", "/empty.txt")
    assert (r.status, r.body, r.header("content-length")) == (200, b"", "0")


def test_changed_file_is_served_fresh(server, root):
    p = root / "a.txt"
    p.write_bytes(b"version one\n")
    assert exchange(server, "GET", "/a.txt").body == b"version one\n"
    p.write_bytes(b"version two\n")  # same size
    assert exchange(server, "GET", "/a.txt").body == b"version two\n"
    p.write_bytes(b"version three, longer\n")
    assert exchange(server, "GET", "/a.txt").body == b"version three, longer\n"


# --- validators and conditional requests ---------------------------------------------------

@pytest.fixture
def dated(root):
    p = root / "d.txt"
    p.write_bytes(b"0123456789abcdefghijklmnopqrstuvwxyz\n")
    set_mtime(p)
    return p


def test_last_modified_and_etag(server, dated):
    r = exchange(server, "GET", "/d.txt")
    assert r.status == 200
    assert r.header("last-modified") == httpdate(MTIME_NS // 10**9)
    assert r.header("etag") == etag_of(dated)
    h = exchange(server, "HEAD", "/d.txt")
    assert h.header("etag") == r.header("etag")
    assert h.header("last-modified") == r.header("last-modified")


@pytest.mark.parametrize("inm", ["{etag}", '"nope", {etag}', "W/{etag}", "*",
                                 '"a", W/{etag} ,"b"'])
def test_if_none_match_304(server, dated, inm):
    tag = etag_of(dated)
    r = exchange(server, "GET", "/d.txt", {"If-None-Match": inm.format(etag=tag)})
    assert r.status == 304, (inm, r)
    assert r.body == b""
    assert r.header("etag") == tag
    # and over HEAD too
    r = exchange(server, "HEAD", "/d.txt", {"If-None-Match": inm.format(etag=tag)})
    assert r.status == 304


def test_if_none_match_mismatch_200(server, dated):
    r = exchange(server, "GET", "/d.txt", {"If-None-Match": '"nope", W/"other"'})
    assert r.status == 200 and r.body == dated.read_bytes()


def test_if_modified_since(server, dated):
    lm = httpdate(MTIME_NS // 10**9)
    for ims in (lm, httpdate(MTIME_NS // 10**9 + 3600)):
        r = exchange(server, "GET", "/d.txt", {"If-Modified-Since": ims})
        assert r.status == 304, (ims, r)
        assert r.body == b""
    r = exchange(server, "GET", "/d.txt", {"If-Modified-Since": httpdate(MTIME_NS // 10**9 - 1)})
    assert r.status == 200 and r.body == dated.read_bytes()
    # rfc850 form is understood too
    r = exchange(server, "GET", "/d.txt",
                 {"If-Modified-Since": "Tuesday, 14-Nov-23 22:13:20 GMT"})
    assert r.status == 304, r


def test_if_modified_since_ignored_with_if_none_match(server, dated):
    lm = httpdate(MTIME_NS // 10**9)
    r = exchange(server, "GET", "/d.txt", {"If-None-Match": '"nope"', "If-Modified-Since": lm})
    assert r.status == 200, r


def test_conditional_with_curl(server, dated):
    lm = httpdate(MTIME_NS // 10**9)
    r = curl_req(server, "/d.txt", "-H", f"If-Modified-Since: {lm}")
    assert r.status == 304 and r.body == b""
    r = curl_req(server, "/d.txt", "-H", f"If-None-Match: {etag_of(dated)}")
    assert r.status == 304


# --- ranges --------------------------------------------------------------------------------

@pytest.fixture
def hundred(root):
    p = root / "h.bin"
    data = bytes(range(100))
    p.write_bytes(data)
    return data


@pytest.mark.parametrize("rng,first,last", [("0-9", 0, 9), ("-5", 95, 99), ("5-", 5, 99),
                                            ("90-1000", 90, 99), ("99-99", 99, 99)])
def test_single_range_curl(server, hundred, rng, first, last):
    r = curl_req(server, "/h.bin", "-r", rng)
    assert r.status == 206, r
    assert r.header("content-range") == f"bytes {first}-{last}/100"
    assert r.body == hundred[first:last + 1]
    assert r.header("content-length") == str(last - first + 1)


@pytest.mark.parametrize("rng", ["100-200", "1000-", "-0"])
def test_unsatisfiable_range_416(server, hundred, rng):
    r = exchange(server, "GET", "/h.bin", {"Range": f"bytes={rng}"})
    assert r.status == 416, (rng, r)
    assert r.header("content-range") == "bytes */100"
    assert_alive(server)


def test_unsatisfiable_range_curl(server, hundred):
    r = curl_req(server, "/h.bin", "-r", "500-600")
    assert r.status == 416
    assert r.header("content-range") == "bytes */100"


def test_multi_range_is_200_whole(server, hundred):
    r = curl_req(server, "/h.bin", "-r", "0-1,5-6")
    assert r.status == 200, r
    assert r.body == hundred
    assert not r.has("content-range")


@pytest.mark.parametrize("value", ["bytes=abc", "items=0-5", "bytes=5-2"])
def test_invalid_range_ignored(server, hundred, value):
    r = exchange(server, "GET", "/h.bin", {"Range": value})
    assert r.status == 200 and r.body == hundred, (value, r)


def test_if_range(server, root, hundred):
    p = root / "h.bin"
    set_mtime(p)
    tag = etag_of(p)
    lm = httpdate(MTIME_NS // 10**9)
    r = curl_req(server, "/h.bin", "-r", "0-9", "-H", f"If-Range: {tag}")
    assert (r.status, r.body) == (206, hundred[:10])
    r = curl_req(server, "/h.bin", "-r", "0-9", "-H", 'If-Range: "stale-etag"')
    assert (r.status, r.body) == (200, hundred)
    r = curl_req(server, "/h.bin", "-r", "0-9", "-H", f"If-Range: {lm}")
    assert (r.status, r.body) == (206, hundred[:10])
    r = curl_req(server, "/h.bin", "-r", "0-9", "-H",
                 f"If-Range: {httpdate(MTIME_NS // 10**9 - 100)}")
    assert (r.status, r.body) == (200, hundred)


def test_range_ignored_on_head(server, hundred):
    # RFC 9110 14.2: range handling is defined for GET only; others ignore Range.
    r = exchange(server, "HEAD", "/h.bin", {"Range": "bytes=10-19"})
    assert r.status == 200
    assert r.header("content-length") == "100"
    assert not r.has("content-range")


def test_range_on_large_file(server, root):
    data = os.urandom(300 * 1024)  # beyond any small-file cache
    (root / "big.bin").write_bytes(data)
    r = curl_req(server, "/big.bin", "-r", "200000-200099")
    assert r.status == 206 and r.body == data[200000:200100]
    r = curl_req(server, "/big.bin", "-r", "-1000")
    assert r.status == 206 and r.body == data[-1000:]


# --- directories -------------------------------------------------------------------------------

def test_index_html_for_dir(server, root):
    write_tree(root, {"site/index.html": "<h1>index</h1>\n", "site/other.txt": "o"})
    r = exchange(server, "GET", "/site/")
    assert r.status == 200 and r.body == b"<h1>index</h1>\n"
    assert r.header("content-type", "").startswith("text/html")
    r = exchange(server, "GET", "/site/?q=1")
    assert r.status == 200 and r.body == b"<h1>index</h1>\n"


def test_root_index(server, root):
    (root / "index.html").write_bytes(b"root index")
    r = curl_req(server, "/")
    assert (r.status, r.body) == (200, b"root index")


@pytest.mark.parametrize("target,location", [("/site", "/site/"),
                                             ("/site?x=1&y=a%20b", "/site/?x=1&y=a%20b"),
                                             ("/a/b", "/a/b/"),
                                             ("/sp%20ace", "/sp%20ace/")])
def test_dir_redirect_keeps_query(server, root, target, location):
    write_tree(root, {"site/": None, "a/b/": None, "sp ace/": None})
    r = exchange(server, "GET", target)
    assert r.status == 301, r
    assert r.header("location") == location
    # curl follows it
    if target == "/site":
        (root / "site" / "index.html").write_bytes(b"followed")
        r = curl_req(server, target, "-L")
        assert (r.status, r.body) == (200, b"followed")


LIST_FILES = {
    "b.txt": b"bb\n",
    "a.txt": b"x" * 1234,
    "B_upper.txt": b"upper",
    '<b>&"x.txt': b"esc",
    "sp ace.txt": b"space",
    "h#sh.txt": b"hash",
    "q?m.txt": b"question",
    "pct%.txt": b"percent",
    "pct%41.txt": b"percent41",
    "caf\u00e9.txt": b"utf8",
    "plus+.txt": b"plus",
}
LIST_DIRS = ["zdir", "adir", "Mdir", "d ir"]


@pytest.fixture
def listing(root):
    d = root / "list"
    d.mkdir()
    for name, data in LIST_FILES.items():
        (d / name).write_bytes(data)
        set_mtime(d / name)
    for name in LIST_DIRS:
        (d / name).mkdir()
    (d / "zdir" / "inner.txt").write_bytes(b"inner")
    return d


def expected_order():
    dirs = sorted(LIST_DIRS, key=lambda n: n.encode())
    files = sorted(LIST_FILES, key=lambda n: n.encode())
    return dirs, files


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for k, v in attrs:
                if k == "href":
                    self.hrefs.append(v)


def raw_hrefs(body):
    return re.findall(r'href="([^"]*)"', body)


def test_html_listing(server, listing):
    r = exchange(server, "GET", "/list/")
    assert r.status == 200, r
    assert r.header("content-type", "").startswith("text/html")
    text = r.body.decode()
    p = Links()
    p.feed(text)
    dirs, files = expected_order()
    names = set(LIST_DIRS) | set(LIST_FILES)
    # hrefs may start with "./" (keeps a name like "a:b" from reading as a scheme)
    got = [h[2:] if h.startswith("./") else h for h in p.hrefs]
    got = [h for h in got if urllib.parse.unquote(h).rstrip("/") in names]
    # Decoded hrefs name the entries, dirs first, each group sorted bytewise.
    decoded = [urllib.parse.unquote(h) for h in got]
    assert decoded == [n + "/" for n in dirs] + files, decoded
    # Hrefs are percent-encoded: nothing that would change the URL's meaning remains.
    for h, name in zip(got, [n + "/" for n in dirs] + files):
        path = h.rstrip("/") if h.endswith("/") else h
        assert not re.search(r"[ #?\"<>]", path), h
        assert not re.search(r"%(?![0-9A-Fa-f]{2})", path), h
        assert urllib.parse.unquote(path) == name.rstrip("/"), (h, name)
    # Names are HTML-escaped in the text.
    assert '<b>&"x.txt' not in text
    assert "&lt;b&gt;&amp;" in text
    # Sizes and dates appear.
    assert re.search(r"1234|1\.2\s?K", text), "size of a.txt (1234 bytes) not shown"
    assert "2023" in text, "modification date not shown"
    # Every link resolves to the file it names.
    for h, name in zip(got, [n + "/" for n in dirs] + files):
        if name.endswith("/"):
            continue
        fr = exchange(server, "GET", urllib.parse.urljoin("/list/", h))
        assert (fr.status, fr.body) == (200, LIST_FILES[name]), (h, fr)


def test_html_listing_with_curl(server, listing):
    r = curl_req(server, "/list/")
    assert r.status == 200
    assert b"inner.txt" not in r.body
    assert b"zdir/" in r.body


def test_json_listing(server, listing):
    r = exchange(server, "GET", "/list/", {"Accept": "application/json"})
    assert r.status == 200, r
    assert r.header("content-type", "").startswith("application/json")
    j = r.json()
    assert set(j) == {"path", "entries"}, j.keys()
    assert j["path"] == "/list/"
    dirs, files = expected_order()
    names = [e["name"] for e in j["entries"]]
    assert names == dirs + files, names
    want_mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(MTIME_NS // 10**9))
    for e in j["entries"]:
        assert set(e) == {"name", "type", "size", "mtime"}, e
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["mtime"]), e
        assert isinstance(e["size"], int)
        if e["name"] in LIST_DIRS:
            assert e["type"] == "dir", e
        else:
            assert e["type"] == "file", e
            assert e["size"] == len(LIST_FILES[e["name"]]), e
            assert e["mtime"] == want_mtime, e
    # Accept lists work as well.
    r2 = exchange(server, "GET", "/list/", {"Accept": "text/html;q=0.5, application/json"})
    assert r2.json() == j
    # The JSON escapes <, > and &.
    assert b"<b>" not in r.body and b"\\u003cb\\u003e\\u0026" in r.body


@pytest.mark.parametrize("accept,kind", [
    ("application/json", "application/json"),
    ("application/json, text/plain, */*", "application/json"),  # axios: named beats a wildcard
    ("application/json;q=0.5, text/html;q=0.4", "application/json"),
    ("application/json;q=0", "text/html"),
    ("text/html,application/json;q=0.9", "text/html"),
    ("*/*", "text/html"),  # curl
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),  # a browser
])
def test_listing_follows_accept_q_values(server, root, accept, kind):
    """JSON when the client prefers it to HTML: q-values count (a JSON of q=0 or below
    HTML got JSON), then a named type before a wildcard."""
    (root / "d").mkdir()
    r = exchange(server, "GET", "/d/", {"Accept": accept})
    assert r.status == 200 and r.header("content-type").split(";")[0] == kind, (accept, r)


def test_index_htm_when_there_is_no_index_html(server, root):
    (root / "old").mkdir()
    (root / "old" / "index.htm").write_text("htm")
    (root / "both").mkdir()
    (root / "both" / "index.htm").write_text("htm")
    (root / "both" / "index.html").write_text("html")
    assert exchange(server, "GET", "/old/").body == b"htm"
    assert exchange(server, "GET", "/both/").body == b"html"
    r = exchange(server, "GET", "/old/?listing")
    assert r.status == 200 and b"index.htm" in r.body and r.body != b"htm", r


def test_precompressed_variants(start, root):
    """--precompressed serves NAME.br, else NAME.gz, for NAME to a client whose
    Accept-Encoding takes it (q-values counted), with NAME's type, Content-Encoding and
    Vary; never a variant older than NAME; without the flag, NAME as it is."""
    import brotli
    import gzip
    data = b"console.log('hello');\n" * 200
    (root / "a.js").write_bytes(data)
    (root / "a.js.gz").write_bytes(gzip.compress(data))
    (root / "a.js.br").write_bytes(brotli.compress(data))
    (root / "old.css").write_bytes(b"new")
    (root / "old.css.gz").write_bytes(gzip.compress(b"stale"))
    os.utime(root / "old.css.gz", (time.time() - 3600,) * 2)
    s = start("--precompressed")
    for ae, coding in (("gzip, deflate, br", "br"), ("gzip", "gzip"), ("br;q=0, gzip;q=0.5", "gzip"),
                       ("identity", None), ("gzip;q=0", None), (None, None), ("*", "br")):
        r = exchange(s, "GET", "/a.js", {"Accept-Encoding": ae} if ae else {})
        assert r.status == 200 and r.header("content-type").startswith("text/javascript"), (ae, r)
        assert r.header("vary") == "Accept-Encoding" and r.header("content-encoding") == coding, (ae, r)
        body = {"br": brotli.decompress, "gzip": gzip.decompress, None: bytes}[coding](r.body)
        assert body == data, ae
    r = exchange(s, "GET", "/a.js", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert r.status == 206 and r.body == (root / "a.js.gz").read_bytes()[:10], r
    r = exchange(s, "GET", "/old.css", {"Accept-Encoding": "gzip"})
    assert r.header("content-encoding") is None and r.body == b"new", r
    plain = start()
    r = exchange(plain, "GET", "/a.js", {"Accept-Encoding": "gzip, br"})
    assert r.header("content-encoding") is None and r.header("vary") is None and r.body == data, r


def test_json_listing_of_root(server, root):
    write_tree(root, {"x.txt": "x", "d/": None})
    r = httpc(server, "GET", "/", headers={"Accept": "application/json"})
    j = r.json()
    assert j["path"] == "/"
    assert [(e["name"], e["type"]) for e in j["entries"]] == [("d", "dir"), ("x.txt", "file")]


def test_query_ignored_for_files(server, root):
    (root / "a.txt").write_bytes(b"A file")
    for t in ("/a.txt?x=1", "/a.txt?", "/a.txt?../../etc/passwd", "/a.txt?%00"):
        r = exchange(server, "GET", t)
        assert (r.status, r.body) == (200, b"A file"), (t, r)


def test_percent_decoded_paths(server, root):
    write_tree(root, {"a b.txt": "space", "caf\u00e9.txt": "utf8", "d/x y/z.txt": "deep",
                      "p+q.txt": "plus"})
    for target, body in [("/a%20b.txt", b"space"), ("/caf%C3%A9.txt", b"utf8"),
                         ("/caf%c3%a9.txt", b"utf8"), ("/d/x%20y/z.txt", b"deep"),
                         ("/%61%20b.txt", b"space"), ("/p+q.txt", b"plus"),
                         ("/p%2Bq.txt", b"plus"), ("/d//x%20y/./z.txt", b"deep"),
                         ("/d/x%20y/../x%20y/z.txt", b"deep")]:
        r = exchange(server, "GET", target)
        assert (r.status, r.body) == (200, body), (target, r)
    r = curl_req(server, "/a%20b.txt")
    assert r.body == b"space"
    for bad in ("/a%2", "/a%zz.txt", "/%"):
        r = exchange(server, "GET", bad)
        assert r.status == 400, (bad, r)
    assert_alive(server)


# --- path safety ---------------------------------------------------------------------------------

TRAVERSALS = [
    ("/../secret.txt", 400),
    ("/%2e%2e/secret.txt", 400),
    ("/%2E%2E/secret.txt", 400),
    ("/.%2e/secret.txt", 400),
    ("/a/%2f..%2f..%2fsecret.txt", 400),
    ("/..%2fsecret.txt", 400),
    ("/sub/../../secret.txt", 400),
    ("/./../secret.txt", 400),
    ("/../etc/passwd", 400),
    ("/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/a/%2f..%2f..%2fetc/passwd", 400),
    ("/..%2f..%2fetc%2fpasswd", 400),
    ("/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400),
    ("/../../../../../../../../etc/passwd", 400),
    ("/%00", 400),
    ("/a.txt%00", 400),
    ("/a.txt%00.html", 400),
    ("/%00/../secret.txt", 400),
    ("/..\\..\\etc\\passwd", 404),
    ("/..%5c..%5csecret.txt", 404),
    ("/..%5C..%5Cetc%5Cpasswd", 404),
    ("//etc/passwd", 404),
    ("///etc/passwd", 404),
    ("/%2fetc%2fpasswd", 404),
    ("/outdir/s.txt", 404),
    ("/%252e%252e/secret.txt", 404),
]


@pytest.mark.parametrize("target,status", TRAVERSALS, ids=[t for t, _ in TRAVERSALS])
def test_traversal_never_leaks(server, root, outside, target, status):
    write_tree(root, {"a.txt": "inside", "sub/x.txt": "x"})
    data = raw(server, reqbytes(server, "GET", target, {"Connection": "close"}), timeout=5)
    assert SECRET not in data and PASSWD_MARK not in data, data[:500]
    rs = parse_responses(data)
    assert rs and rs[0].status == status, (target, data[:400])
    assert_alive(server)


def test_traversal_with_curl_path_as_is(server, root, outside):
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/../../../../etc/passwd"):
        p = curl("--path-as-is", "-i", server.url.rstrip("/") + path)
        assert p.returncode == 0, p.stderr
        assert SECRET not in p.stdout and PASSWD_MARK not in p.stdout
        assert p.stdout.split(b" ")[1] == b"400", p.stdout[:200]  # climbs above the root


def test_dotdot_inside_root_is_fine(server, root):
    write_tree(root, {"a.txt": "inside", "sub/x.txt": "x"})
    r = exchange(server, "GET", "/sub/../a.txt")
    assert (r.status, r.body) == (200, b"inside")


@pytest.fixture
def links(root, outside):
    write_tree(root, {"a.txt": "target inside", "sub/b.txt": "bee", "real/": None})
    os.symlink("a.txt", root / "rel_in.txt")
    os.symlink("../a.txt", root / "sub" / "up_in.txt")
    os.symlink(str(root / "sub"), root / "abs_in_dir")
    os.symlink(str(outside / "secret.txt"), root / "abs_out.txt")
    os.symlink("../secret.txt", root / "rel_out.txt")
    os.symlink("../../secret.txt", root / "sub" / "rel_out2.txt")
    os.symlink(str(outside / "outdir"), root / "abs_outdir")
    os.symlink("../outdir", root / "rel_outdir")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("/etc", root / "etc")
    os.symlink("nowhere", root / "dangling")
    return root


def test_symlinks_inside_root_served(server, links):
    for target, body in [("/rel_in.txt", b"target inside"), ("/sub/up_in.txt", b"target inside")]:
        r = exchange(server, "GET", target)
        assert (r.status, r.body) == (200, body), (target, r)
    j = exchange(server, "GET", "/", {"Accept": "application/json"}).json()
    assert [e["type"] for e in j["entries"] if e["name"] == "rel_in.txt"] == ["file"]


def test_absolute_symlink_inside_root_served(server, links):
    # An absolute symlink whose target is inside DIR does not lead outside it.
    r = exchange(server, "GET", "/abs_in_dir/b.txt")
    assert (r.status, r.body) == (200, b"bee"), r
    j = exchange(server, "GET", "/", {"Accept": "application/json"}).json()
    assert [e["type"] for e in j["entries"] if e["name"] == "abs_in_dir"] == ["dir"]


OUT_LINKS = ["abs_out.txt", "rel_out.txt", "abs_outdir", "rel_outdir", "passwd", "etc"]


@pytest.mark.parametrize("target", ["/abs_out.txt", "/rel_out.txt", "/sub/rel_out2.txt",
                                    "/abs_outdir/", "/abs_outdir/s.txt", "/abs_outdir",
                                    "/rel_outdir/", "/rel_outdir/s.txt", "/passwd",
                                    "/etc/passwd", "/etc/", "/dangling"])
def test_symlinks_leading_out_are_404(server, links, target):
    for method in ("GET", "HEAD"):
        data = raw(server, reqbytes(server, method, target, {"Connection": "close"}))
        assert SECRET not in data and PASSWD_MARK not in data
        rs = parse_responses(data, [method])
        assert rs[0].status == 404, (method, target, data[:300])
    r = exchange(server, "GET", target, {"Accept": "application/json"})
    assert r.status == 404 and SECRET not in r.body


def test_symlinks_leading_out_not_listed(server, links):
    r = exchange(server, "GET", "/")
    assert r.status == 200
    text = r.body.decode()
    for name in OUT_LINKS:
        assert f'"{name}' not in text and f">{name}<" not in text and f"{name}/" not in text, name
    assert "rel_in.txt" in text
    j = exchange(server, "GET", "/", {"Accept": "application/json"}).json()
    names = {e["name"] for e in j["entries"]}
    assert not names & set(OUT_LINKS), names
    assert {"a.txt", "rel_in.txt", "sub", "real"} <= names, names
    j = exchange(server, "GET", "/sub/", {"Accept": "application/json"}).json()
    names = {e["name"] for e in j["entries"]}
    assert "rel_out2.txt" not in names and {"b.txt", "up_in.txt"} <= names, names


# --- dotfiles ------------------------------------------------------------------------------------

@pytest.fixture
def dots(root):
    write_tree(root, {".env": "SECRET=1\n", ".git/config": "[core]\n", "visible.txt": "v",
                      "sub/.hidden": "h", ".well/x.txt": "x"})
    return root


@pytest.mark.parametrize("target", ["/.env", "/.git/config", "/.git/", "/.git", "/sub/.hidden",
                                    "/%2eenv", "/%2Egit/config", "/.well/x.txt",
                                    "/sub/../.env"])
def test_dotfiles_404(server, dots, target):
    for method in ("GET", "HEAD"):
        r = exchange(server, method, target)
        assert r.status == 404, (method, target, r)
        assert b"SECRET" not in r.body and b"[core]" not in r.body


def test_dotfiles_not_listed(server, dots):
    r = exchange(server, "GET", "/")
    assert b".env" not in r.body and b".git" not in r.body and b".well" not in r.body
    assert b"visible.txt" in r.body
    j = exchange(server, "GET", "/", {"Accept": "application/json"}).json()
    assert {e["name"] for e in j["entries"]} == {"visible.txt", "sub"}
    j = exchange(server, "GET", "/sub/", {"Accept": "application/json"}).json()
    assert j["entries"] == []


def test_dotfiles_flag(start, dots):
    s = start("--dotfiles")
    for target, body in [("/.env", b"SECRET=1\n"), ("/.git/config", b"[core]\n"),
                         ("/sub/.hidden", b"h")]:
        r = exchange(s, "GET", target)
        assert (r.status, r.body) == (200, body), (target, r)
    j = exchange(s, "GET", "/", {"Accept": "application/json"}).json()
    assert {".env", ".git", ".well", "visible.txt", "sub"} == {e["name"] for e in j["entries"]}
    r = exchange(s, "GET", "/")
    assert b".env" in r.body and b".git/" in r.body


# --- --spa ---------------------------------------------------------------------------------------

def test_spa_fallback(start, root):
    write_tree(root, {"index.html": "<div id=app></div>", "app.js": "js();", "sub/": None})
    s = start("--spa")
    for target in ("/some/route", "/some/route?x=1", "/deep/a/b/c", "/v1.2/page"):
        r = exchange(s, "GET", target)
        assert (r.status, r.body) == (200, b"<div id=app></div>"), (target, r)
        assert r.header("content-type", "").startswith("text/html")
    r = exchange(s, "HEAD", "/some/route")
    assert r.status == 200 and r.header("content-length") == str(len("<div id=app></div>"))
    for target in ("/missing.js", "/img/logo.png", "/a/b.css"):
        r = exchange(s, "GET", target)
        assert r.status == 404, (target, r)
    r = exchange(s, "GET", "/app.js")
    assert (r.status, r.body) == (200, b"js();")


def test_no_spa_by_default(server, root):
    (root / "index.html").write_bytes(b"index")
    assert exchange(server, "GET", "/some/route").status == 404


# --- --cors --------------------------------------------------------------------------------------

def test_cors_headers(start, root):
    (root / "a.txt").write_bytes(b"a")
    s = start("--cors")
    for target, status in (("/a.txt", 200), ("/missing", 404), ("/_/get", 200)):
        r = exchange(s, "GET", target, {"Origin": "http://example.com"})
        assert r.status == status
        assert r.header("access-control-allow-origin") == "*", (target, r.headers)
        assert r.has("access-control-expose-headers"), r.headers
    r = exchange(s, "GET", "/a.txt")  # no Origin: still on every response
    assert r.header("access-control-allow-origin") == "*"


def test_cors_preflight(start, root):
    (root / "a.txt").write_bytes(b"a")
    s = start("--cors")
    r = exchange(s, "OPTIONS", "/a.txt", {
        "Origin": "http://example.com",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "X-Foo, Content-Type",
        "Access-Control-Request-Private-Network": "true"})
    assert r.status == 204, r
    assert r.header("access-control-allow-origin") == "*"
    assert r.has("access-control-allow-methods")
    assert {"x-foo", "content-type"} <= r.tokens("access-control-allow-headers"), r.headers
    assert r.header("access-control-max-age") == "86400"
    assert r.header("access-control-allow-private-network") == "true"
    r = exchange(s, "OPTIONS", "/a.txt", {"Origin": "http://example.com",
                                          "Access-Control-Request-Method": "GET"})
    assert r.status == 204
    assert not r.has("access-control-allow-private-network")


def test_no_cors_without_flag(server, root):
    (root / "a.txt").write_bytes(b"a")
    r = exchange(server, "GET", "/a.txt", {"Origin": "http://example.com"})
    assert r.status == 200
    assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")], r.headers
    r = exchange(server, "OPTIONS", "/a.txt", {
        "Origin": "http://example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Private-Network": "true"})
    assert not [k for k, _ in r.headers if k.lower().startswith("access-control-")], r.headers


# --- --write -------------------------------------------------------------------------------------

@pytest.fixture
def writable(start, root):
    return start("--write")


def test_put_create_replace_delete(writable, root, tmp_path):
    s = writable
    src = tmp_path / "src.bin"
    data1 = os.urandom(5000)
    src.write_bytes(data1)
    r = curl_req(s, "/new.bin", "-T", str(src))
    assert r.status == 201, r
    assert (root / "new.bin").read_bytes() == data1
    data2 = b"replaced\n"
    r = httpc(s, "PUT", "/new.bin", body=data2)
    assert r.status == 204, r
    assert r.body == b""
    assert (root / "new.bin").read_bytes() == data2
    assert exchange(s, "GET", "/new.bin").body == data2
    r = httpc(s, "DELETE", "/new.bin")
    assert r.status == 204, r
    assert not (root / "new.bin").exists()
    assert exchange(s, "GET", "/new.bin").status == 404
    assert httpc(s, "DELETE", "/new.bin").status == 404
    assert sorted(os.listdir(root)) == []


def test_conditional_writes_prevent_lost_updates(writable, root, tmp_path):
    """RFC 9110 13.1: If-Match and If-Unmodified-Since fail any method with 412, and
    If-None-Match fails a write (a GET gets 304); the file is untouched. They were
    ignored: If-None-Match: * overwrote an existing file."""
    s = writable
    (root / "f.txt").write_bytes(b"v1")
    etag = exchange(s, "GET", "/f.txt").header("etag")
    new = tmp_path / "new.txt"
    new.write_bytes(b"v2")

    def put(*hdrs):
        return curl_req(s, "/f.txt", "-T", str(new), *[a for h in hdrs for a in ("-H", h)]).status

    assert put("If-None-Match: *") == 412  # create-only: it exists
    assert put('If-Match: "stale"') == 412
    assert put(f"If-Match: W/{etag}") == 412  # If-Match compares strongly
    assert put("If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT") == 412
    assert put(f"If-None-Match: {etag}") == 412
    assert (root / "f.txt").read_bytes() == b"v1"
    r = httpc(s, "PUT", "/f.txt", body=b"v2", headers={"If-Match": f'"other", {etag}'})
    assert r.status == 204, r
    assert (root / "f.txt").read_bytes() == b"v2"
    # The replaced file has another ETag: the old one is stale for DELETE too.
    assert httpc(s, "DELETE", "/f.txt", headers={"If-Match": etag}).status == 412
    assert httpc(s, "GET", "/f.txt", headers={"If-Match": etag}).status == 412
    r = httpc(s, "GET", "/f.txt", headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert r.status == 412 and b"If-Unmodified-Since" in r.body, r
    assert httpc(s, "DELETE", "/missing.txt", headers={"If-Match": "*"}).status == 412
    assert httpc(s, "MKCOL", "/f.txt", headers={"If-None-Match": "*"}).status == 412
    assert httpc(s, "PUT", "/g.txt", body=b"g", headers={"If-None-Match": "*"}).status == 201
    cur = exchange(s, "GET", "/f.txt").header("etag")
    assert httpc(s, "GET", "/f.txt", headers={"If-None-Match": cur}).status == 304
    assert httpc(s, "DELETE", "/f.txt", headers={"If-Match": cur}).status == 204
    assert sorted(os.listdir(root)) == ["g.txt"]


def _head_of(sock):
    return Conn(sock=sock).read_until(b"\r\n\r\n").decode()


@pytest.mark.parametrize("cond", ["If-None-Match: *", "If-Match: {etag}"])
def test_overlapping_conditional_puts_cannot_both_win(writable, root, cond):
    """The precondition holds when the upload begins and is checked again as the file
    is put in place: of two overlapping PUTs with it, the one that finishes second gets
    412 and its bytes are dropped (both won: a lost update). The 412 of a refused body
    says Connection: close, as the server then closes."""
    s = writable
    (root / "a.txt").write_bytes(b"orig")
    etag = exchange(s, "GET", "/a.txt").header("etag")
    target = "/a.txt" if "etag" in cond else "/new.txt"
    cond = cond.format(etag=etag)
    put = "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Length: 10\r\n\r\n"
    a = socket.create_connection((s.host, s.port), timeout=10)
    a.sendall((put % (target, cond)).encode() + b"AAAAA")
    time.sleep(0.3)  # A's upload has begun
    b = socket.create_connection((s.host, s.port), timeout=10)
    b.sendall((put % (target, cond)).encode() + b"BBBBBBBBBB")
    assert _head_of(b).startswith("HTTP/1.1 20"), "B"
    a.sendall(b"AAAAA")
    head = _head_of(a)
    assert head.startswith("HTTP/1.1 412 "), head
    assert (root / target[1:]).read_bytes() == b"BBBBBBBBBB"
    # Refused before its body was read: the answer says the connection closes.
    c = socket.create_connection((s.host, s.port), timeout=10)
    c.sendall((put % (target, cond)).encode())
    head = _head_of(c)
    assert head.startswith("HTTP/1.1 412 ") and "\r\nConnection: close" in head, head
    for k in (a, b, c):
        k.close()


def test_precondition_lines_make_one_list(writable, root):
    """If-Match and If-None-Match sent as several lines are one list (RFC 9110 5.3): only
    the first line was read. A listing has no ETag: If-Match holds for * only."""
    s = writable
    (root / "a.txt").write_bytes(b"a")
    (root / "d").mkdir()
    etag = exchange(s, "GET", "/a.txt").header("etag")

    def raw_status(method, path, lines):
        c = socket.create_connection((s.host, s.port), timeout=10)
        c.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}Connection: close\r\n\r\n".encode())
        head = _head_of(c)
        c.close()
        return int(head.split()[1])

    assert raw_status("GET", "/a.txt", f'If-Match: "x"\r\nIf-Match: {etag}\r\n') == 200
    assert raw_status("DELETE", "/a.txt", f'If-None-Match: "x"\r\nIf-None-Match: {etag}\r\n') == 412
    assert (root / "a.txt").exists()
    assert raw_status("GET", "/d/", 'If-Match: "x"\r\n') == 412
    assert raw_status("GET", "/d/", "If-Match: *\r\n") == 200
    assert raw_status("GET", "/d/", "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n") == 412


def test_put_chunked_and_empty(writable, root):
    s = writable
    with Conn(s) as c:
        c.send(b"PUT /c.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
        assert c.response().status == 201
        c.request("PUT", "/empty.txt", body=b"")
        assert c.response().status == 201
    assert (root / "c.txt").read_bytes() == b"abcdef"
    assert (root / "empty.txt").read_bytes() == b""


def test_put_in_subdir_and_missing_dir(writable, root):
    s = writable
    (root / "d").mkdir()
    assert httpc(s, "PUT", "/d/x%20y.txt", body=b"sub").status == 201
    assert (root / "d" / "x y.txt").read_bytes() == b"sub"
    r = httpc(s, "PUT", "/nodir/x.txt", body=b"z")
    assert r.status == 409, r
    assert not (root / "nodir").exists()
    r = httpc(s, "PUT", "/d", body=b"z")
    assert r.status == 409, r
    r = httpc(s, "PUT", "/d/", body=b"z")
    assert r.status == 409, r  # docs/serve.md: a directory as target
    assert (root / "d").is_dir()


def test_delete_dirs(writable, root):
    s = writable
    write_tree(root, {"full/x.txt": "x", "empty/": None})
    assert httpc(s, "DELETE", "/full").status == 409
    assert (root / "full" / "x.txt").exists()
    assert httpc(s, "DELETE", "/empty").status == 204
    assert not (root / "empty").exists()


@pytest.mark.parametrize("target", ["/t.txt/", "/t.txt//", "/t.txt/.", "/t.txt/./", "/t.txt%2F",
                                    "/t.txt/%2e", "/sub/t.txt/../t.txt/", "/sub/../t.txt/"])
def test_delete_of_a_file_named_as_a_directory_is_404_and_keeps_it(writable, root, target):
    """"/t.txt/" names a directory, as GET's 404 says: DELETE deleted the file (a hostile
    pass found it, after the same in FTP's DELE)."""
    write_tree(root, {"t.txt": "keep", "sub/u.txt": "u", "d/": None})
    r = exchange(writable, "DELETE", target)
    assert r.status == 404, (target, r)
    assert (root / "t.txt").read_bytes() == b"keep"
    assert httpc(writable, "DELETE", "/d/").status == 204  # a directory so named goes
    assert not (root / "d").exists()


@pytest.mark.parametrize("target", ["/dlnk/", "/dlnk/."])
def test_delete_of_a_symlink_to_a_directory_named_as_one_keeps_it(writable, root, target):
    write_tree(root, {"d/": None})
    os.symlink("d", root / "dlnk")
    r = exchange(writable, "DELETE", target)
    assert r.status == 404 and b"not a directory" in r.body, r
    assert os.path.islink(root / "dlnk") and (root / "d").is_dir()


def test_put_onto_a_fifo_is_refused_and_keeps_it(writable, root):
    """An upload never replaces a FIFO, a socket or a device with a file (FTP's STOR
    says the same, 550 not a plain file)."""
    os.mkfifo(root / "pipe")
    r = exchange(writable, "PUT", "/pipe", body=b"x")
    assert r.status == 403 and b"not a plain file" in r.body, r
    assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode)
    assert exchange(writable, "GET", "/pipe").status == 403


def test_put_unsafe_targets_rejected(writable, root, outside):
    s = writable
    os.symlink(str(outside / "outdir"), root / "out")
    (root / ".git").mkdir()
    os.symlink(str(outside / "secret.txt"), root / "secret_link")
    cases = [("/.env", (404,)), ("/.git/hooks-x", (404,)), ("/../escaped.txt", (400,)),
             ("/%2e%2e/escaped.txt", (400,)), ("/out/new.txt", (404, 409))]
    for target, status in cases:
        r = exchange(s, "PUT", target, body=b"evil")
        assert r.status in status, (target, r)
    assert sorted(os.listdir(outside / "outdir")) == ["s.txt"]
    assert not (outside / "escaped.txt").exists()
    assert not (root / ".env").exists()
    assert os.listdir(root / ".git") == []
    # replacing a symlink that leads out must not write through it
    r = exchange(s, "PUT", "/secret_link", body=b"overwritten")
    assert (outside / "secret.txt").read_bytes() == SECRET, r
    r = exchange(s, "DELETE", "/out/s.txt")
    assert r.status == 404
    assert (outside / "outdir" / "s.txt").exists()


def test_put_cut_off_leaves_old_file(writable, root):
    s = writable
    (root / "old.txt").write_bytes(b"OLD CONTENT\n")
    with Conn(s) as c:
        c.send(b"PUT /old.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
               + b"N" * 5000)
        time.sleep(0.3)
    with Conn(s) as c:
        c.send(b"PUT /fresh.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
               + b"F" * 5000)
        time.sleep(0.3)
    ok = wait_for(lambda: sorted(os.listdir(root)) == ["old.txt"], timeout=3)
    assert ok, f"left behind: {sorted(os.listdir(root))}"
    assert (root / "old.txt").read_bytes() == b"OLD CONTENT\n"
    assert exchange(s, "GET", "/old.txt").body == b"OLD CONTENT\n"
    assert_alive(s)


def test_put_too_large_leaves_nothing(start, root):
    s = start("--write", "--max-body", "1K")
    (root / "keep.txt").write_bytes(b"keep")
    r = exchange(s, "PUT", "/keep.txt", body=b"k" * 4096)
    assert r.status == 413
    assert (root / "keep.txt").read_bytes() == b"keep"
    assert wait_for(lambda: os.listdir(root) == ["keep.txt"]), os.listdir(root)


def test_large_file_download(server, root):
    data = os.urandom(20 * 1024 * 1024)
    (root / "big.bin").write_bytes(data)
    p = curl("-o", "-", server.url + "big.bin", timeout=20)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == len(data)
    assert hashlib.sha256(p.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_large_file_with_http_client_keepalive(server, root):
    data = os.urandom(3 * 1024 * 1024)
    (root / "big.bin").write_bytes(data)
    (root / "small.txt").write_bytes(b"small")
    with Conn(server, timeout=10) as c:
        c.send(reqbytes(server, "GET", "/big.bin") + reqbytes(server, "GET", "/small.txt"))
        r = c.response()
        assert r.status == 200 and r.body == data
        assert c.response().body == b"small"


# --- access log ----------------------------------------------------------------------------------

COMMON = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
                    r'"([^"]*)" (\d{3}) (\d+) (\d+)$')


def access_lines(s, n, timeout=3):
    def lines():
        ls = [ln for ln in s.stderr().splitlines() if ln and not ln.startswith("loopkit: ")]
        return ls if len(ls) >= n else None
    got = wait_for(lines, timeout)
    assert got, f"expected {n} access-log lines, stderr: {s.stderr()!r}"
    return got


def test_access_log_common(start, root):
    # One loop: each loop writes its own lines, so only one loop's lines come in request
    # order (with two, the next request's line can be written before this one's).
    server = start("--threads", "1")
    (root / "a.txt").write_bytes(b"x" * 12)
    exchange(server, "GET", "/a.txt?q=1")
    exchange(server, "GET", "/missing")
    exchange(server, "HEAD", "/a.txt")
    with Conn(server) as c:
        c.send(b"GET /a.txt HTTP/1.0\r\n\r\n")
        c.response()
    lines = access_lines(server, 4)
    assert len(lines) == 4, lines
    ms = [COMMON.match(ln) for ln in lines]
    assert all(ms), lines
    m = ms[0]
    assert m.group(1) == "127.0.0.1"
    assert m.group(3) == "GET /a.txt?q=1 HTTP/1.1"
    assert (m.group(4), m.group(5)) == ("200", "12")
    assert ms[1].group(3) == "GET /missing HTTP/1.1" and ms[1].group(4) == "404"
    r404 = exchange(server, "GET", "/missing")
    assert ms[1].group(5) == str(len(r404.body))
    assert ms[2].group(3) == "HEAD /a.txt HTTP/1.1" and ms[2].group(5) == "0"
    assert ms[3].group(3) == "GET /a.txt HTTP/1.0"
    ts = time.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S %z")
    assert abs(calendar.timegm(ts) - time.time()) < 60


def test_access_log_json(start, root):
    (root / "a.txt").write_bytes(b"x" * 12)
    s = start("--log", "json", "--threads", "1")  # one loop: lines in request order
    exchange(s, "GET", "/a.txt?q=1")
    exchange(s, "GET", '/we"ird\\path<>')
    exchange(s, "POST", "/_/anything", body=b"abc")
    lines = access_lines(s, 3)
    recs = [json.loads(ln) for ln in lines]
    keys = {"time", "remote", "method", "target", "proto", "status", "bytes", "us"}
    for rec in recs:
        assert set(rec) == keys, rec
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["time"]), rec
        assert isinstance(rec["us"], int) and rec["us"] >= 0
        assert rec["remote"] == "127.0.0.1"
    assert recs[0]["method"] == "GET" and recs[0]["target"] == "/a.txt?q=1"
    assert (recs[0]["proto"], recs[0]["status"], recs[0]["bytes"]) == ("HTTP/1.1", 200, 12)
    assert recs[1]["target"] == '/we"ird\\path<>' and recs[1]["status"] == 404
    assert recs[2]["method"] == "POST" and recs[2]["status"] == 200 and recs[2]["bytes"] > 0


def test_access_log_combined_and_json_carry_referer_and_user_agent(start, root):
    """--log combined is nginx's and Apache's combined format exactly (log analysers
    read it); JSON lines get "referer" and "user_agent" when the request had them."""
    (root / "a.txt").write_bytes(b"abc")
    hdrs = {"Referer": "http://ref.example/p?q=1", "User-Agent": 'UA/1.0 "x" \\y'}
    comb = start("--log", "combined", "--threads", "1")
    exchange(comb, "GET", "/a.txt", hdrs)
    exchange(comb, "GET", "/missing")
    lines = access_lines(comb, 2)
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "GET /a\.txt HTTP/1\.1" 200 3 '
                        r'"http://ref\.example/p\?q=1" "UA/1\.0 \\x22x\\x22 \\x5cy"', lines[0]), lines[0]
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "GET /missing HTTP/1\.1" 404 \d+ "-" "-"', lines[1]), lines[1]
    js = start("--log", "json", "--threads", "1")
    exchange(js, "GET", "/a.txt", {"Referer": "r", "User-Agent": "u" * 600})
    rec = json.loads(access_lines(js, 1)[0])
    assert rec["referer"] == "r" and rec["user_agent"] == "u" * 512, rec  # HTTP_LOG_AGENT_MAX


def test_access_log_bad_request_logged(server, root):
    raw(server, b"GET /x HTTP/1.1\r\nHost: localhost\r\nX: a\x00b\r\n\r\n")
    lines = access_lines(server, 1)
    assert any(re.search(r'" 400 \d+ \d+$', ln) for ln in lines), lines


def test_access_log_json_bad_request_after_a_good_one_names_no_target(start, root):
    """A 400 on a kept-alive connection is logged without the previous request's
    target (the JSON log showed it: "method":"-","target":"/secret-...")."""
    (root / "a.txt").write_bytes(b"a")
    s = start("--log", "json", "--threads", "1")
    raw(s, b"GET /a.txt?secret HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE\r\n\r\n")
    recs = [json.loads(ln) for ln in access_lines(s, 2)]
    assert [(r["method"], r["target"], r["status"]) for r in recs] == [
        ("GET", "/a.txt?secret", 200), ("-", "", 400)], recs


def test_quiet_writes_no_access_lines(start, root):
    (root / "a.txt").write_bytes(b"a")
    s = start("--quiet")
    for _ in range(3):
        assert exchange(s, "GET", "/a.txt").status == 200
    exchange(s, "GET", "/missing")
    time.sleep(0.3)
    bad = [ln for ln in s.stderr().splitlines() if ln and not ln.startswith("loopkit: ")]
    assert bad == [], bad


# --- freshness of cached small files ------------------------------------------------------------

def test_fresh_after_rename_delete_and_hardlink_write(server, root, tmp_path):
    write_tree(root, {"r.txt": "first\n", "sub/t.txt": "target\n", "d/x.txt": "in d"})
    os.symlink("sub/t.txt", root / "via_link.txt")
    for t in ("/r.txt", "/via_link.txt", "/d/x.txt"):
        assert exchange(server, "GET", t).status == 200
    # replaced by rename
    (root / "r.tmp").write_bytes(b"second\n")
    os.rename(root / "r.tmp", root / "r.txt")
    assert exchange(server, "GET", "/r.txt").body == b"second\n"
    # symlink target modified in place (same size)
    (root / "sub" / "t.txt").write_bytes(b"TARGET\n")
    assert exchange(server, "GET", "/via_link.txt").body == b"TARGET\n"
    # modified through a hard link that lives outside the root (same size, mtime restored)
    p = root / "r.txt"
    st = os.stat(p)
    os.link(p, tmp_path / "hard.txt")
    with open(tmp_path / "hard.txt", "r+b") as f:
        f.write(b"SECOND\n")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert exchange(server, "GET", "/r.txt").body == b"SECOND\n"
    # directory renamed away, file deleted
    os.rename(root / "d", root / "e")
    assert exchange(server, "GET", "/d/x.txt").status == 404
    assert exchange(server, "GET", "/e/x.txt").body == b"in d"
    os.unlink(root / "r.txt")
    assert exchange(server, "GET", "/r.txt").status == 404


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_change_is_served_by_the_next_request_under_load(start, root, threads):
    """A file rewritten just before a request is served new, every time: on a new
    connection (read by the sniffer at accept, on either thread) and on a kept-alive
    one, while eight other clients keep the loop's batches full. The server reads the
    inotify queue only when it is ready in the turn's batch (no read per request)."""
    import threading
    srv = start("--threads", threads)
    (root / "other.txt").write_bytes(b"other\n")
    p = root / "v.txt"
    stop = threading.Event()
    bad = []

    def noise():
        c = Conn(srv, timeout=10)
        while not stop.is_set():
            c.request("GET", "/other.txt")
            if c.response().status != 200:
                bad.append("noise")
        c.close()

    ts = [threading.Thread(target=noise) for _ in range(8)]
    for t in ts:
        t.start()
    try:
        keep = Conn(srv, timeout=10)
        for i in range(400):
            want = b"version %06d\n" % i  # same size every time
            p.write_bytes(want)
            got = exchange(srv, "GET", "/v.txt").body
            if got != want:
                bad.append(("new connection", i, got))
            p.write_bytes(want.upper())
            keep.request("GET", "/v.txt")
            got = keep.response().body
            if got != want.upper():
                bad.append(("kept alive", i, got))
        keep.close()
    finally:
        stop.set()
        for t in ts:
            t.join()
    assert bad == [], bad[:5]


@pytest.mark.alone  # 30 downloads load the machine
def test_a_change_is_served_to_a_request_pipelined_behind_another(start, root):
    """One keep-alive connection sends a request, the file is rewritten, a second request
    follows at once: both are read together, and the second must get the new content.
    With 30 curl downloads running, 31 of 3,000 were stale when only a request that epoll
    itself reported counted as covered by the turn's inotify news."""
    srv = start("--threads", "1")
    with open(root / "big.bin", "wb") as big:
        big.truncate(256 << 20)  # sparse: the downloads cost no disk
    p = root / "v.txt"
    p.write_bytes(b"v000000\n")
    url = f"http://127.0.0.1:{srv.port}/big.bin"
    downloads = [subprocess.Popen(["curl", "-s", "--max-time", "20"] + ["-o", "/dev/null", url] * 4)
                 for _ in range(30)]
    req = b"GET /v.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    stale = []
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def body():
            assert f.readline().startswith(b"HTTP/1.1 200")
            n = 0
            while (line := f.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            return f.read(n)
        deadline = time.monotonic() + 20
        for i in range(1, 3001):
            if time.monotonic() > deadline:
                break
            s.sendall(req)
            p.write_bytes(b"v%06d\n" % i)  # same size every time
            s.sendall(req)
            body()
            if (got := body()) != b"v%06d\n" % i:
                stale.append((i, got))
    finally:
        s.close()
        for d in downloads:
            d.kill()
            d.wait()
    assert stale == [], (len(stale), stale[:3])


def test_range_and_conditional_follow_changes(server, root):
    p = root / "c.txt"
    p.write_bytes(b"0123456789")
    set_mtime(p)
    old = exchange(server, "GET", "/c.txt").header("etag")
    p.write_bytes(b"abcdefghij")
    set_mtime(p, MTIME_NS + 10**9)
    r = exchange(server, "GET", "/c.txt", {"If-None-Match": old})
    assert r.status == 200 and r.body == b"abcdefghij"
    assert r.header("etag") == etag_of(p) != old
    r = exchange(server, "GET", "/c.txt", {"Range": "bytes=2-3", "If-Range": old})
    assert (r.status, r.body) == (200, b"abcdefghij")


# --- more validators and ranges ----------------------------------------------------------------

def test_if_range_weak_etag_never_matches(server, dated):
    r = exchange(server, "GET", "/d.txt", {"Range": "bytes=0-3", "If-Range": "W/" + etag_of(dated)})
    assert r.status == 200 and r.body == dated.read_bytes(), r


def test_invalid_if_modified_since_ignored(server, dated):
    r = exchange(server, "GET", "/d.txt", {"If-Modified-Since": "yesterday-ish"})
    assert r.status == 200 and r.body == dated.read_bytes()


def test_range_on_empty_file_416(server, root):
    (root / "e.bin").write_bytes(b"")
    r = exchange(server, "GET", "/e.bin", {"Range": "bytes=0-"})
    assert r.status == 416 and r.header("content-range") == "bytes */0", r


def test_range_single_byte(server, hundred):
    r = exchange(server, "GET", "/h.bin", {"Range": "bytes=0-0"})
    assert (r.status, r.body, r.header("content-range")) == (206, b"\x00", "bytes 0-0/100")


# --- listings: escaping of the directory's own name, redirects with special names -----------------

def test_listing_escapes_directory_name(server, root):
    d = root / '<i>x&"'
    d.mkdir()
    (d / "f.txt").write_bytes(b"f")
    r = exchange(server, "GET", "/%3Ci%3Ex%26%22/")
    assert r.status == 200, r
    assert b"<i>x" not in r.body, "directory name not HTML-escaped"
    assert b"&lt;i&gt;x&amp;" in r.body
    j = exchange(server, "GET", "/%3Ci%3Ex%26%22/", {"Accept": "application/json"})
    assert b"<i>" not in j.body
    assert j.json()["path"] == '/<i>x&"/', j.json()["path"]  # decoded, as the entries' names


@pytest.mark.parametrize("name,target", [("h#sh", "/h%23sh"), ("q?m", "/q%3Fm"),
                                         ("p%41", "/p%2541"), ("sp ace", "/sp%20ace")])
def test_redirect_location_is_encoded(server, root, name, target):
    (root / name).mkdir()
    r = exchange(server, "GET", target + "?k=v")
    assert r.status == 301, r
    loc = r.header("location")
    path, _, query = loc.partition("?")
    assert query == "k=v", loc
    assert urllib.parse.unquote(path) == "/" + name + "/", loc
    assert not re.search(r"[ #?]", path), loc
    assert exchange(server, "GET", loc).status == 200


def test_head_of_listing_matches_get(server, listing):
    """A listing streams (chunked, issue 11): HEAD has GET's framing and type, no body."""
    g = exchange(server, "GET", "/list/")
    h = exchange(server, "HEAD", "/list/")
    assert h.status == 200 and h.body == b""
    assert g.header("transfer-encoding") == h.header("transfer-encoding") == "chunked"
    assert g.header("content-type") == h.header("content-type")
    assert h.header("content-length") is None


# --- more --write ------------------------------------------------------------------------------

def test_delete_dotfile_without_dotfiles_is_404(writable, root):
    (root / ".env").write_bytes(b"keep")
    assert exchange(writable, "DELETE", "/.env").status == 404
    assert (root / ".env").read_bytes() == b"keep"


def test_stalled_put_times_out_and_cleans_up(start, root):
    s = start("--write", "--body-timeout", "1")
    (root / "old.txt").write_bytes(b"OLD\n")
    with Conn(s, timeout=5) as c:
        c.send(b"PUT /old.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789")
        t0 = time.monotonic()
        closed, got = c.wait_closed(5)
        assert closed, "stalled upload kept open"
        assert time.monotonic() - t0 <= 3.2
        rs = parse_responses(got)
        assert [r.status for r in rs] == [408], got  # docs/serve.md: 408, upload discarded
        assert rs[0].closes(), got
    assert wait_for(lambda: os.listdir(root) == ["old.txt"]), os.listdir(root)
    assert (root / "old.txt").read_bytes() == b"OLD\n"
    assert_alive(s)


def test_spa_without_index_is_404(start, root):
    s = start("--spa")
    assert exchange(s, "GET", "/some/route").status == 404
    assert_alive(s)


# --- a client that stops reading does not stall others ------------------------------------------

def test_slow_reader_does_not_block_others(start, root):
    # One loop: with two, the other clients may simply land on the other loop.
    server = start("--threads", "1")
    (root / "big.bin").write_bytes(os.urandom(16 * 1024 * 1024))
    (root / "small.txt").write_bytes(b"small")
    slow = server.connect(5)
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(reqbytes(server, "GET", "/big.bin"))
        time.sleep(0.3)  # the server's socket buffer is full now
        t0 = time.monotonic()
        for _ in range(10):
            assert exchange(server, "GET", "/small.txt").body == b"small"
        assert time.monotonic() - t0 < 1.0
    finally:
        slow.close()
    assert_alive(server)


def test_big_file_copied_to_a_loopback_client_is_exact_in_every_range(server, root):
    """A body of 64 KiB or more goes to a loopback client copied through memory, read
    128 KiB at a time and sent 32 KiB at a time (core/filesend.h): the whole file and
    ranges at and around those boundaries are the file's bytes."""
    data = os.urandom((1 << 20) + 12345)
    (root / "copied.bin").write_bytes(data)
    r = curl_req(server, "/copied.bin")
    assert r.status == 200 and hashlib.sha256(r.body).digest() == hashlib.sha256(data).digest()
    for first, last in ((0, 65535), (1, 131072), (32767, 32768 * 5), (131071, 400000),
                        (500000, len(data) - 1)):
        r = curl_req(server, "/copied.bin", "-r", f"{first}-{last}")
        assert r.status == 206 and r.body == data[first:last + 1], (first, last)


def test_file_cut_short_under_a_copied_download_closes_the_connection(server, root):
    """The file shrinks while it is sent: the connection closes before the promised
    Content-Length, as nginx does (the client sees a short body, never made-up bytes),
    and the server serves on."""
    big = root / "shrinks.bin"
    big.write_bytes(os.urandom(16 << 20))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the kernel cannot take it all
    s.settimeout(10)
    s.connect(("127.0.0.1", server.port))
    s.sendall(b"GET /shrinks.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, body = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 16777216" in head, head
    os.truncate(big, 200000)
    while chunk := s.recv(1 << 20):
        body += chunk
    s.close()
    assert 0 < len(body) < 16 << 20
    assert curl_req(server, "/shrinks.bin").body == big.read_bytes()
