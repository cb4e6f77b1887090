"""Libraries opened on first need (src/core/lazylib.h): no verb maps SQLite, zlib,
Brotli, Nettle or jansson until it uses them (nor libm, which nothing needs), and a
missing one is a clear error where it is needed, while the rest of the verb works."""

import gzip
import http.client
import json
import os
import subprocess

from conftest import LOOPKIT, sanitizer_build

LAZY = ("libsqlite3.so", "libz.so", "libbrotlienc.so", "libbrotlidec.so", "libbrotlicommon.so",
        "libnettle.so", "libjansson.so") + (() if sanitizer_build() else ("libm.so",))  # ASan's runtime needs libm


def mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}


def lib_path(soname):
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith(soname + " ") and "x86-64" in line:
            return line.rsplit(" ", 1)[1]
    raise AssertionError(f"{soname} is not installed (scripts/deps)")


def masked(soname):
    """argv prefix: a private mount namespace where the library reads as an empty file."""
    ns = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    return ns + ["sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"', lib_path(soname)]


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Encoding"), r.read()
    finally:
        c.close()


def test_serve_maps_a_compression_library_only_when_an_answer_needs_it(server):
    assert not [n for n in mapped(server.pid) if n.startswith(LAZY)]
    status, coding, body = get(server.port, "/_/gzip")
    assert (status, coding) == (200, "gzip")
    assert json.loads(gzip.decompress(body))["gzipped"] is True
    names = mapped(server.pid)
    assert any(n.startswith("libz.so") for n in names), names
    assert not [n for n in names if n.startswith(("libsqlite3.so", "libbrotlienc.so", "libnettle.so"))], names
    status, _, body = get(server.port, "/_/digest-auth/auth/u/p")  # the 401 challenge: no digest yet
    assert status == 401, body
    assert any(n.startswith("libnettle.so") for n in mapped(server.pid))


def test_short_lived_verbs_never_map_them(tmp_path):
    # isolate's CMD reads its parent's maps: the loopkit that runs it
    r = subprocess.run([LOOPKIT, "isolate", "-q", "--", "sh", "-c", 'cat /proc/$PPID/maps'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # pid 1 of the namespace is loopkit's own child: its maps are the parent's copy
    names = {line.split()[-1].rsplit("/", 1)[-1] for line in r.stdout.splitlines() if "/" in line}
    assert any(n.startswith("libc.so") for n in names), names
    assert not [n for n in names if n.startswith(LAZY)], names


def test_a_missing_sqlite_is_a_clear_error_for_the_history_only(tmp_path):
    db = tmp_path / "h.db"
    r = subprocess.run(masked("libsqlite3.so.0") + [LOOPKIT, "watch", "--db", str(db), "-i", "1s",
                                                    "tcp://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "loopkit watch: cannot load libsqlite3.so.0 (" in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith("install the Debian package libsqlite3-0"), r.stderr
    # the other verbs start as before
    r = subprocess.run(masked("libsqlite3.so.0") + [LOOPKIT, "port"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip().isdigit(), (r.returncode, r.stdout, r.stderr)


def test_a_missing_brotli_fails_brotli_answers_alone(tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    p = subprocess.Popen(masked("libbrotlienc.so.1") + [LOOPKIT, "serve", str(tmp_path), "--port", "0", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline().decode()
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        status, _, body = get(port, "/_/brotli")
        assert status == 500, body
        err = json.loads(body)["error"]
        assert err.startswith("a library that this needs cannot be loaded: cannot load libbrotlienc.so.1 ("), err
        assert err.endswith("install the Debian package libbrotli1"), err
        # and again (the failure is remembered, not retried into a crash)
        assert get(port, "/_/brotli")[0] == 500
        status, coding, body = get(port, "/_/gzip")
        assert (status, coding) == (200, "gzip")
        assert get(port, "/a.txt") == (200, None, b"hello\n")
    finally:
        p.terminate()
        assert p.wait(10) == 0


def start_serve(argv):
    """A serve (argv: the command line up to its flags) on a free port: (process, port)."""
    p = subprocess.Popen(argv + ["--port", "0", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    return p, int(line.rsplit(":", 1)[1].strip("/\n"))


def test_a_missing_nettle_stops_only_what_needs_digests(tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    # serve --user hashes the password at start: it cannot start, and says why
    r = subprocess.run(masked("libnettle.so.8") + [LOOPKIT, "serve", str(tmp_path), "--user", "a:b",
                                                   "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith("loopkit serve: cannot load libnettle.so.8 ("), r.stderr
    assert r.stderr.rstrip().endswith("install the Debian package libnettle8"), r.stderr
    # without --user it serves; Digest auth answers 500 with the reason
    p, port = start_serve(masked("libnettle.so.8") + [LOOPKIT, "serve", str(tmp_path)])
    try:
        status, _, body = get(port, "/_/digest-auth/auth/u/p")
        assert status == 500, body
        err = json.loads(body)["error"]
        assert err.startswith("a library that this needs cannot be loaded: cannot load libnettle.so.8 ("), err
        assert get(port, "/a.txt") == (200, None, b"hello\n")
    finally:
        p.terminate()
        assert p.wait(10) == 0


def test_a_missing_jansson_is_an_error_where_json_is_read(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('[{"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}]')
    missing = "cannot load libjansson.so.4 ("
    for argv in ([LOOPKIT, "proxy", "--config", str(cfg), "--api", "off"],
                 [LOOPKIT, "watch", "--config", str(cfg), "--once"]):
        r = subprocess.run(masked("libjansson.so.4") + argv, capture_output=True, text=True, timeout=30)
        # exit 1 (cannot run here), not 2: the config file is not at fault
        assert r.returncode == 1, (argv, r.returncode, r.stderr)
        assert missing in r.stderr and r.stderr.rstrip().endswith("install the Debian package libjansson4"), r.stderr
    # the proxy's API answers 500 to a request that carries JSON, and works otherwise
    p = subprocess.Popen(masked("libjansson.so.4") + [LOOPKIT, "proxy", "--api", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(p.stdout.readline().decode().split(":")[-1].strip("/\n"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/proxies", body='{"name": "a", "upstream": "127.0.0.1:1"}')
        r = c.getresponse()
        body = r.read()
        assert r.status == 500, body
        assert missing in json.loads(body)["error"], body
        c.request("GET", "/version")
        r = c.getresponse()
        assert r.status == 200 and r.read()
        c.close()
    finally:
        p.terminate()
        assert p.wait(10) == 0


EVIL = r"""
#include <stdio.h>
__attribute__((constructor)) static void pwn(void)
{
	FILE *f = fopen(MARK, "w");
	if (f) {
		fputs("loaded\n", f);
		fclose(f);
	}
}
"""


def test_an_uploaded_library_is_never_loaded_through_a_relative_ld_library_path(tmp_path):
    # LD_LIBRARY_PATH=/opt/x: (a trailing colon: an empty entry, the current directory):
    # the library is opened long after start, from the directory serve --write takes
    # uploads into. Loaded at start it would have been found before any upload.
    mark = tmp_path / "PWNED"
    src = tmp_path / "evil.c"
    src.write_text(EVIL.replace("MARK", '"%s"' % mark))
    built = tmp_path / "evil.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(built), str(src)], check=True, timeout=60)
    site = tmp_path / "site"
    site.mkdir()
    env = dict(os.environ, LD_LIBRARY_PATH="/opt/none:")
    p = subprocess.Popen([LOOPKIT, "serve", "--write", "--port", "0", "-q"], cwd=site, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(p.stdout.readline().decode().rsplit(":", 1)[1].strip("/\n"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("PUT", "/libz.so.1", body=built.read_bytes())
        assert c.getresponse().status == 201
        c.close()
        status, _, body = get(port, "/_/gzip")
        assert status == 500, body
        err = json.loads(body)["error"]
        assert "LD_LIBRARY_PATH has the entry '', which names the current directory" in err, err
        assert not mark.exists()
        assert get(port, "/libz.so.1")[0] == 200  # the rest of the server works
    finally:
        p.terminate()
        assert p.wait(10) == 0
