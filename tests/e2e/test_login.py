"""--user NAME:PASS protects every protocol on the port (issue 12): HTTP with Basic
authentication, FTP with USER/PASS; one credential, one delay for a wrong password."""
import base64
import ftplib
import time

import pytest

from conftest import exchange

FILE = b"secret contents\n"


@pytest.fixture
def site(root):
    (root / "a.txt").write_bytes(FILE)
    return root


def auth(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_http_needs_the_login(start, site):
    s = start("--user", "me:s3cret")
    r = exchange(s, "GET", "/a.txt")
    assert r.status == 401 and r.body != FILE, r
    assert r.header("www-authenticate").startswith('Basic realm="loopkit"'), r
    r = exchange(s, "GET", "/_/get")
    assert r.status == 401, r
    r = exchange(s, "GET", "/a.txt", auth("me", "s3cret"))
    assert r.status == 200 and r.body == FILE, r


def test_http_wrong_password_waits(start, site):
    s = start("--user", "me:s3cret")
    t = time.monotonic()
    r = exchange(s, "GET", "/a.txt", auth("me", "wrong"))
    took = time.monotonic() - t
    assert r.status == 401 and r.body != FILE, r
    assert took >= 0.45, took
    t = time.monotonic()
    r = exchange(s, "GET", "/a.txt", auth("you", "s3cret"))
    assert r.status == 401 and time.monotonic() - t >= 0.45


def test_http_login_with_colon_in_password(start, site):
    s = start("--user", "me:a:b")
    assert exchange(s, "GET", "/a.txt", auth("me", "a:b")).status == 200
    assert exchange(s, "GET", "/a.txt", auth("me", "a")).status == 401


def test_preflight_is_not_asked_for_credentials(start, site):
    s = start("--user", "me:s3cret", "--cors")
    r = exchange(s, "OPTIONS", "/a.txt", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert r.status == 204, r


def test_access_log_names_the_user(start, site):
    from conftest import wait_for
    s = start("--user", "me:s3cret")
    exchange(s, "GET", "/a.txt", auth("me", "s3cret"))
    assert wait_for(lambda: '127.0.0.1 - me [' in s.stderr()), s.stderr()


def test_ftp_uses_the_same_login(start, site):
    s = start("--user", "me:s3cret", "--sniff-ms", "50")
    f = ftplib.FTP()
    f.connect(s.host, s.port, timeout=10)
    with pytest.raises(ftplib.error_perm):
        f.login("me", "wrong")
    f.close()
    f = ftplib.FTP()
    f.connect(s.host, s.port, timeout=10)
    f.login("me", "s3cret")
    got = []
    f.retrbinary("RETR a.txt", got.append)
    assert b"".join(got) == FILE
    f.quit()
