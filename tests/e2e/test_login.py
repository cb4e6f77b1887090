"""--user NAME:PASS protects every protocol on the port (issue 12): HTTP with Basic
authentication, FTP with USER/PASS; one credential, and one login gate (core/login.c)
for both: a constant-time check, and a server-wide budget of failed logins. Once the
budget is spent, every login not yet proven on its connection, right or wrong, by
either protocol, waits its turn (LOGIN_FAIL_RATE a second); past LOGIN_QUEUE_MAX
waiting, every such login is refused (503, 421). The review's attack (hostile review,
finding 3: "no answer within 30 ms means wrong", guesses in parallel over new
connections) is replayed here against HTTP and FTP."""
import base64
import ftplib
import http.client
import os
import re
import selectors
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import CURL, LOOPKIT, FtpCtl, exchange, hard_timeout_fixture, wait_for

FILE = b"secret contents\n"
USER, PASS = "alice", "s3cret"

# src/core/login.h
LOGIN_FAIL_RATE = 10
LOGIN_FAIL_BURST = 10
LOGIN_QUEUE_MAX = 50

THROTTLED = re.compile(r"loopkit: login: (\d+) failed logins in [\d.]+ s: guessing is throttled; "
                       r"every login now waits its turn \(10 a second, at most 50 waiting\)")
BUSY = "too many login attempts; try again in a few seconds"

_hard_timeout = hard_timeout_fixture(60)


@pytest.fixture
def site(root):
    (root / "a.txt").write_bytes(FILE)
    return root


def auth(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def rst_close(s):
    """Closes with a reset, as the review's attacker does: nothing lingers anywhere."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def http_get(srv, user, pw, timeout=15):
    """One GET /a.txt with Basic credentials on a new connection (http.client):
    (status, Retry-After, body, seconds)."""
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request("GET", "/a.txt", headers={"Authorization": basic(user, pw)})
        r = c.getresponse()
        body = r.read()
        return r.status, r.getheader("Retry-After"), body, time.monotonic() - t0
    finally:
        c.close()


def ftp_login(srv, user, pw, timeout=15):
    """USER/PASS with ftplib on a new session: (reply of PASS, seconds from USER)."""
    f = ftplib.FTP()
    f.connect(srv.host, srv.port, timeout=timeout)
    t0 = time.monotonic()
    try:
        try:
            resp = f.login(user, pw)
        except ftplib.error_perm as e:  # 530
            resp = str(e)
        except ftplib.error_temp as e:  # 421
            resp = str(e)
        return resp, time.monotonic() - t0
    finally:
        f.close()


def log_throttled(srv):
    return THROTTLED.search(srv.stderr())


# ====================================================================== basics


def test_http_needs_the_login(ftp_start, site):
    s = ftp_start("--user", "me:s3cret")
    r = exchange(s, "GET", "/a.txt")
    assert r.status == 401 and r.body != FILE, r
    assert r.header("www-authenticate").startswith('Basic realm="loopkit"'), r
    r = exchange(s, "GET", "/_/get")
    assert r.status == 401, r
    r = exchange(s, "GET", "/a.txt", auth("me", "s3cret"))
    assert r.status == 200 and r.body == FILE, r


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read().split(b"\0")


def test_the_password_is_not_left_on_the_command_line(ftp_start, site):
    # every user can read another's command line (ps, /proc/PID/cmdline): it is blanked
    s = ftp_start("--user", "me:s3cret")
    args = cmdline(s.pid)
    assert b"me:******" in args and not [a for a in args if b"s3cret" in a], args
    assert exchange(s, "GET", "/a.txt", auth("me", "s3cret")).status == 200
    s2 = ftp_start("--user=me:s3cret")
    assert b"--user=me:******" in cmdline(s2.pid)
    f = ftplib.FTP()
    f.connect(s2.host, s2.port, timeout=10)
    f.login("me", "s3cret")
    f.quit()


def test_the_login_can_come_from_the_environment(ftp_start, site):
    s = ftp_start(env=dict(os.environ, LOOPKIT_USER="me:s3cret"))
    assert exchange(s, "GET", "/a.txt").status == 401
    assert exchange(s, "GET", "/a.txt", auth("me", "s3cret")).status == 200
    assert not [a for a in cmdline(s.pid) + environ(s.pid) if b"s3cret" in a]
    # --user wins over it
    s = ftp_start("--user", "you:other", env=dict(os.environ, LOOPKIT_USER="me:s3cret"))
    assert exchange(s, "GET", "/a.txt", auth("you", "other")).status == 200
    assert exchange(s, "GET", "/a.txt", auth("me", "s3cret")).status == 401


def test_a_malformed_environment_login_is_a_usage_error(root):
    r = subprocess.run([LOOPKIT, "serve", str(root), "--port", "0"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, LOOPKIT_USER="nocolon"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("loopkit serve: LOOPKIT_USER: want NAME:PASS, both non-empty"), r.stderr


@pytest.mark.parametrize("value,why", [
    (":SECRETx", "want NAME:PASS, both non-empty"),
    ("me:" + "S" * 300, "PASS under 256"),
    ("me:SECRET\nx", "PASS has a control character"),
    ("m\te:SECRETx", "NAME has a control character"),
])
def test_a_bad_user_value_is_refused_without_repeating_it(root, value, why):
    """A usage error's message goes to terminals and CI logs: it says why, never the
    password."""
    r = subprocess.run([LOOPKIT, "serve", str(root), "--port", "0", "--user", value], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("loopkit serve: --user (value not shown): ") and why in r.stderr, r.stderr
    assert "SECRET" not in r.stderr and "SSSS" not in r.stderr, r.stderr


def test_a_mistyped_user_flag_is_not_echoed_either(root):
    r = subprocess.run([LOOPKIT, "serve", str(root), "--port", "0", "--user:me:SECRETx"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("loopkit serve: unknown option --user:..."), r.stderr
    assert "SECRET" not in r.stderr, r.stderr


def test_http_login_with_colon_in_password(ftp_start, site):
    s = ftp_start("--user", "me:a:b")
    assert exchange(s, "GET", "/a.txt", auth("me", "a:b")).status == 200
    assert exchange(s, "GET", "/a.txt", auth("me", "a")).status == 401


def test_preflight_is_not_asked_for_credentials(ftp_start, site):
    s = ftp_start("--user", "me:s3cret", "--cors")
    r = exchange(s, "OPTIONS", "/a.txt", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert r.status == 204, r


def test_a_preflight_does_not_tell_whether_the_server_is_writable(ftp_start, site):
    # answered without credentials: the same answer with and without --write (the FTP
    # greeting keeps the same secret until login)
    pre = {"Origin": "http://x.example", "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Private-Network": "true"}
    seen = []
    for extra in ((), ("--write",)):
        s = ftp_start("--user", "me:s3cret", "--cors", *extra)
        r = exchange(s, "OPTIONS", "/a.txt", pre)
        assert r.status == 204, r
        assert r.header("allow") is None, r
        seen.append((r.header("access-control-allow-methods"), r.header("access-control-allow-private-network")))
        # once logged in, OPTIONS says what the server allows
        r = exchange(s, "OPTIONS", "/a.txt", auth("me", "s3cret"))
        assert ("PUT" in r.header("allow")) == bool(extra), r
    assert seen[0] == seen[1] == ("GET, HEAD, OPTIONS, POST", None), seen


def test_access_log_names_the_user(ftp_start, site):
    s = ftp_start("--user", "me:s3cret")
    exchange(s, "GET", "/a.txt", auth("me", "s3cret"))
    assert wait_for(lambda: '127.0.0.1 - me [' in s.stderr()), s.stderr()


def test_ftp_uses_the_same_login(ftp_start, site):
    s = ftp_start("--user", "me:s3cret")
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


def test_ftp_compares_the_whole_login(ftp_start, site):
    """FTP's PASS goes through the gate's check (digests compared in constant time;
    tests/unit/test_login.c times it): no prefix, extension or near miss passes."""
    s = ftp_start("--user", f"{USER}:{PASS}")
    for user, pw in [(USER, PASS[:-1]), (USER, PASS + "x"), (USER, PASS.upper()), (USER[:-1], PASS),
                     (USER + "e", PASS), (USER + ":" + PASS, ""), ("x" * 70, PASS)]:
        with FtpCtl(s) as c:
            assert c.cmd(f"USER {user}")[0] == 331
            code, text = c.cmd(f"PASS {pw}")
            assert code == 530, (user, pw, text)
    with FtpCtl(s) as c:
        assert c.cmd(f"USER {USER}")[0] == 331
        assert c.cmd(f"PASS {PASS}")[0] == 230


# ============================================== no attack: nobody waits (and no log)


def test_legitimate_logins_are_answered_at_once(ftp_start, site, tmp_path):
    """Without an attack a login is answered at once by every client, and so is a
    user's typo: there is no delay any more; a few typos spend a little of the budget
    and nothing waits or is logged."""
    s = ftp_start("--user", f"{USER}:{PASS}")
    for pw in ["typo1", "typo2", PASS]:  # http.client
        status, _, body, took = http_get(s, USER, pw)
        assert status == (200 if pw == PASS else 401), (pw, status)
        assert took < 1.0, (pw, took)
    t0 = time.monotonic()
    p = subprocess.run([CURL, "-s", "-m", "10", "-u", f"{USER}:{PASS}", s.url + "a.txt"],
                       capture_output=True, timeout=15)
    assert p.returncode == 0 and p.stdout == FILE, p
    assert time.monotonic() - t0 < 1.0
    for pw in ["typo3", PASS]:  # ftplib
        resp, took = ftp_login(s, USER, pw)
        assert resp.startswith("230" if pw == PASS else "530"), (pw, resp)
        assert took < 1.0, (pw, took)
    home = tmp_path / "lftp-home"
    home.mkdir()
    t0 = time.monotonic()
    p = subprocess.run(["lftp", "-c", "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 5; "
                        f"open -u {USER},{PASS} {s.ftp_url}; cat a.txt"],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                       env={"HOME": str(home), "LFTP_HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and p.stdout == FILE, p
    assert time.monotonic() - t0 < 2.0
    assert "guessing" not in s.stderr(), s.stderr()


# =============================================== the review's attack, HTTP and FTP


def guess_http(srv, total, inflight, right_at, give_up=0.03, limit=20):
    """The review's brute2.py: `inflight` guesses at a time, each on a new connection;
    no answer within give_up seconds counts as "wrong" and the connection is reset.
    Guess number right_at carries the right password. Returns (index found or None,
    401s received, 503s received, seconds)."""
    sel = selectors.DefaultSelector()
    sent = done = wrong = busy = 0
    found = None
    t0 = time.monotonic()
    while done < total and found is None and time.monotonic() - t0 < limit:
        while sent - done < inflight and sent < total:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((srv.host, srv.port))
            except BlockingIOError:
                pass
            pw = PASS if sent == right_at else f"guess{sent}"
            sel.register(s, selectors.EVENT_WRITE, [sent, time.monotonic(), basic(USER, pw)])
            sent += 1
        now = time.monotonic()
        for key, ev in sel.select(0.005):
            s, (i, ts, cred) = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(f"GET /a.txt HTTP/1.1\r\nHost: {srv.host}\r\nAuthorization: {cred}\r\n\r\n".encode())
                except OSError:
                    sel.unregister(s)
                    rst_close(s)
                    done += 1
                    continue
                sel.modify(s, selectors.EVENT_READ, [i, time.monotonic(), cred])
                continue
            try:
                d = s.recv(100)
            except OSError:
                d = b""
            if d.startswith(b"HTTP/1.1 200"):
                found = i
            elif d.startswith(b"HTTP/1.1 401"):
                wrong += 1
            elif d.startswith(b"HTTP/1.1 503"):
                busy += 1
            sel.unregister(s)
            rst_close(s)
            done += 1
        for key in list(sel.get_map().values()):
            if now - key.data[1] > give_up:  # silence: "wrong", says the attacker
                sel.unregister(key.fileobj)
                rst_close(key.fileobj)
                done += 1
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        rst_close(key.fileobj)
    return found, wrong, busy, time.monotonic() - t0


def guess_ftp(srv, total, inflight, right_at, give_up=0.03, limit=20):
    """The same over FTP: a new session per guess; after the greeting, USER and PASS
    pipelined; no final reply within give_up seconds of sending them counts as "wrong".
    Returns (index found or None, 530s received, 421s received, seconds)."""
    sel = selectors.DefaultSelector()
    sent = done = wrong = busy = 0
    found = None
    t0 = time.monotonic()

    def drop(s):
        nonlocal done
        sel.unregister(s)
        rst_close(s)
        done += 1

    while done < total and found is None and time.monotonic() - t0 < limit:
        while sent - done < inflight and sent < total:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((srv.host, srv.port))
            except BlockingIOError:
                pass
            pw = PASS if sent == right_at else f"guess{sent}"
            # [index, password, bytes read, when PASS was sent (None: not yet)]
            sel.register(s, selectors.EVENT_READ, [sent, pw, b"", None])
            sent += 1
        now = time.monotonic()
        for key, ev in sel.select(0.005):
            s, st = key.fileobj, key.data
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if not d:
                drop(s)
                continue
            st[2] += d
            lines = st[2].split(b"\r\n")
            if st[3] is None and any(ln.startswith(b"220 ") for ln in lines):
                try:
                    s.send(f"USER {USER}\r\nPASS {st[1]}\r\n".encode())
                except OSError:
                    drop(s)
                    continue
                st[3] = time.monotonic()
            codes = [ln[:4] for ln in lines]
            if b"230 " in codes:
                found = st[0]
            elif b"530 " in codes:
                wrong += 1
            elif b"421 " in codes:
                busy += 1
            else:
                continue
            drop(s)
        for key in list(sel.get_map().values()):
            st = key.data
            if st[3] is not None and now - st[3] > give_up:
                drop(key.fileobj)
            elif st[3] is None and now - t0 > limit:
                drop(key.fileobj)
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        rst_close(key.fileobj)
    return found, wrong, busy, time.monotonic() - t0


@pytest.mark.alone
@pytest.mark.parametrize("proto", ["http", "ftp"])
def test_the_reviews_attack_gets_the_budget_and_nothing_more(ftp_start, site, proto):
    """Before the gate, this found the password (2,167 guesses/s over HTTP). Now a
    right password is as silent as a wrong one while the budget is spent, so "silence
    means wrong" finds nothing, and the answers that do tell "wrong" come at most
    LOGIN_FAIL_BURST plus LOGIN_FAIL_RATE a second."""
    s = ftp_start("--user", f"{USER}:{PASS}")
    if proto == "http":
        found, wrong, busy, took = guess_http(s, total=3000, inflight=200, right_at=1500)
    else:
        found, wrong, busy, took = guess_ftp(s, total=1500, inflight=200, right_at=750)
    assert found is None, f"the attack found the password (guess {found})"
    assert wrong <= LOGIN_FAIL_BURST + LOGIN_FAIL_RATE * took + 1, (wrong, took)
    m = log_throttled(s)
    assert m and int(m.group(1)) == LOGIN_FAIL_BURST, s.stderr()[-2000:]
    assert s.stderr().count("guessing is throttled") == 1  # once per burst


# =========================================== during an attack: one queue for everyone


class PatientGuesser(threading.Thread):
    """A guesser that waits for every answer (as hydra does) and guesses again at once,
    on a new HTTP connection or on its FTP session: it keeps one login in the queue for
    as long as it runs (at most `limit` seconds; each guess answered within 10 s)."""

    def __init__(self, srv, proto, n, stop, limit=30):
        super().__init__(daemon=True)
        self.srv, self.proto, self.n, self.stop, self.limit = srv, proto, n, stop, limit
        self.codes = []
        self.error = None

    def run(self):
        t0 = time.monotonic()
        try:
            if self.proto == "http":
                while not self.stop.is_set() and time.monotonic() - t0 < self.limit:
                    status, _, _, _ = http_get(self.srv, USER, f"guess{self.n}", timeout=10)
                    self.codes.append(status)
            else:
                with FtpCtl(self.srv, timeout=10) as c:
                    while not self.stop.is_set() and time.monotonic() - t0 < self.limit:
                        assert c.cmd(f"USER {USER}")[0] == 331
                        self.codes.append(c.cmd(f"PASS guess{self.n}")[0])
        except Exception as e:  # reported by the test
            self.error = repr(e)


def start_guessers(srv, proto, n):
    stop = threading.Event()
    gs = [PatientGuesser(srv, proto, i, stop) for i in range(n)]
    for g in gs:
        g.start()
    return stop, gs


def stop_guessers(stop, gs):
    stop.set()
    for g in gs:
        g.join(15)
    assert not any(g.is_alive() for g in gs)
    return [g.error for g in gs if g.error], sorted({c for g in gs for c in g.codes})


def timed(fn, *args):
    """Runs fn(*args) in a thread; returns a function that joins it and gives its result."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn(*args)), daemon=True)
    t.start()

    def join():
        t.join(20)
        assert "r" in out, "the login did not finish"
        return out["r"]
    return join


@pytest.mark.alone
@pytest.mark.parametrize("attack", ["http", "ftp"])
def test_during_an_attack_right_and_wrong_logins_wait_alike(ftp_start, site, attack):
    """30 patient guessers over one protocol keep about 30 logins queued (fewer than
    LOGIN_QUEUE_MAX: nobody is refused). A new login over either protocol then waits
    its turn behind them, about 3 s, whether its password is right or wrong: the
    answer's timing says nothing. Connections that logged in before the attack (an HTTP
    keep-alive connection, an FTP session) are not asked again: served at once."""
    s = ftp_start("--user", f"{USER}:{PASS}")
    # Logged in before the attack.
    keep = http.client.HTTPConnection(s.host, s.port, timeout=10)
    keep.request("GET", "/a.txt", headers={"Authorization": basic(USER, PASS)})
    r = keep.getresponse()
    assert r.status == 200 and r.read() == FILE
    session = FtpCtl(s, timeout=10)
    assert session.cmd(f"USER {USER}")[0] == 331 and session.cmd(f"PASS {PASS}")[0] == 230

    stop, gs = start_guessers(s, attack, 30)
    try:
        assert wait_for(lambda: log_throttled(s), 10), s.stderr()[-2000:]
        time.sleep(0.5)  # every guesser has had its first answer and is queued again
        results = {
            "http right": timed(http_get, s, USER, PASS),
            "http wrong": timed(http_get, s, USER, "nope"),
            "ftp right": timed(ftp_login, s, USER, PASS),
            "ftp wrong": timed(ftp_login, s, USER, "nope"),
        }
        # The proven connections meanwhile: no gate, no wait.
        t0 = time.monotonic()
        keep.request("GET", "/a.txt", headers={"Authorization": basic(USER, PASS)})
        r = keep.getresponse()
        assert r.status == 200 and r.read() == FILE
        assert session.cmd("PWD")[0] == 257
        assert session.cmd(f"USER {USER}")[0] == 331 and session.cmd(f"PASS {PASS}")[0] == 230
        proven_took = time.monotonic() - t0
        got = {k: join() for k, join in results.items()}
    finally:
        errors, codes = stop_guessers(stop, gs)
        keep.close()
        session.sock.close()
    assert not errors, errors
    assert codes == ([401] if attack == "http" else [530]), codes  # nobody refused
    assert got["http right"][0] == 200 and got["http wrong"][0] == 401, got
    assert got["ftp right"][0].startswith("230") and got["ftp wrong"][0].startswith("530"), got
    waits = {k: v[-1] for k, v in got.items()}
    # About 3 s each (30 queued ahead, 10 a second); 1 s leaves room for a loaded machine.
    assert all(w >= 1.0 for w in waits.values()), waits
    assert proven_took < 1.0, proven_took


# ======================================================= the queue's limit


@pytest.mark.alone
def test_a_full_queue_refuses_every_login(ftp_start, site):
    """120 wrong logins at once: LOGIN_FAIL_BURST answered, LOGIN_QUEUE_MAX queued,
    the rest refused with 503 and Retry-After. While the queue drains (to half), the
    right password is refused too, over HTTP (503) and FTP (421, and the session
    closes); once the queue has room, it logs in."""
    s = ftp_start("--user", f"{USER}:{PASS}")
    n = 120
    socks = []
    for i in range(n):  # each request sent as it connects: an HTTP client, not a silent one
        c = socket.create_connection((s.host, s.port), timeout=15)
        c.sendall(f"GET /a.txt HTTP/1.1\r\nHost: {s.host}\r\nAuthorization: {basic(USER, f'g{i}')}\r\n"
                  "Connection: close\r\n\r\n".encode())
        socks.append(c)
    sel = selectors.DefaultSelector()
    for c in socks:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, [b""])
    statuses, refused_right = [], None
    deadline = time.monotonic() + 30
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            c = key.fileobj
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            key.data[0] += d
            if d:
                continue
            sel.unregister(c)
            c.close()
            resp = key.data[0]
            statuses.append(int(resp[9:12]))
            if statuses[-1] == 503 and refused_right is None:
                # Refused: the queue is full. The right login now, both protocols.
                assert b"\r\nRetry-After: " in resp and BUSY.encode() in resp, resp
                refused_right = (http_get(s, USER, PASS), ftp_login(s, USER, PASS))
    assert not sel.get_map(), "some answers never came"
    assert len(statuses) == n
    assert set(statuses) == {401, 503}, sorted(set(statuses))
    # The first LOGIN_FAIL_BURST + LOGIN_QUEUE_MAX the server took cannot be refused.
    assert statuses.count(401) >= LOGIN_FAIL_BURST + LOGIN_QUEUE_MAX, statuses.count(401)
    (status, retry, body, _), (ftp_resp, _) = refused_right
    assert status == 503 and int(retry) >= 1 and BUSY in body.decode(), (status, retry, body)
    assert ftp_resp.startswith("421") and BUSY in ftp_resp, ftp_resp
    # The queue drains: the right login gets its turn (and waits for it).
    status, _, body, took = http_get(s, USER, PASS, timeout=20)
    assert status == 200 and body == FILE, (status, body)
