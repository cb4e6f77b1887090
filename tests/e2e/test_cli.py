"""End-to-end tests of the `loopkit` command line and of `loopkit serve` start-up,
binding and shutdown (docs/serve-spec.txt: CLI, exit codes, signals)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import (LOOPKIT, Conn, Server, assert_alive, exchange, hard_timeout_fixture,
                      connection_on_a_port, fin_timeout, httpc, proc_tcp_sockets)

_hard_timeout = hard_timeout_fixture(25)

SPEC_FLAGS = ["--host", "--port", "--public", "--write", "--threads", "--dotfiles", "--cors",
              "--spa", "--allow-host", "--log", "--quiet", "--max-conns", "--max-body",
              "--head-timeout", "--idle-timeout", "--body-timeout", "--grace"]


def run(*args, timeout=5, cwd=None):
    """Runs loopkit; a command that does not exit within `timeout` fails the test."""
    try:
        return subprocess.run([LOOPKIT] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`loopkit {' '.join(args)}` did not exit within {timeout} s "
                    f"(stdout {e.stdout!r}, stderr {e.stderr!r})")


def version():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "VERSION")) as f:
        return f.read().strip()


# --- help, version, usage errors -------------------------------------------------------

def test_help_exits_0():
    p = run("--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "serve" in out, out
    assert "usage" in out.lower(), out


def test_version_exits_0():
    p = run("--version")
    assert p.returncode == 0, p.stderr
    assert version() in p.stdout.decode(), p.stdout


def test_serve_help_lists_every_flag():
    p = run("serve", "--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    missing = [f for f in SPEC_FLAGS if not re.search(re.escape(f) + r"\b", out)]
    assert not missing, f"serve --help does not mention {missing}:\n{out}"
    assert "DIR" in out, out


@pytest.mark.parametrize("args", [["frobnicate"], ["--frobnicate"]])
def test_unknown_verb_exits_2_with_usage(args):
    p = run(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "usage" in p.stderr.decode().lower(), p.stderr
    assert b"http://" not in p.stdout


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--port", "abc"],
    ["--port", "70000"],
    ["--log", "xml"],
    ["--max-body", "12X"],
    ["--port"],
])
def test_serve_usage_errors_exit_2(tmp_path, args):
    p = run("serve", str(tmp_path), *args, cwd=str(tmp_path))
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    err = p.stderr.decode()
    assert err.strip(), "no message on stderr"
    assert b"http://" not in p.stdout, p.stdout
    if args == ["--bogus"]:
        assert "usage" in err.lower() and "--bogus" in err, err


def test_serve_missing_dir_fails(tmp_path):
    missing = str(tmp_path / "nope")
    p = run("serve", missing, "--port", "0")
    assert p.returncode == 1, p.returncode  # docs/serve.md: cannot start
    assert b"http://" not in p.stdout
    assert "nope" in p.stderr.decode(), p.stderr


# --- --host ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_non_loopback_host_refused_without_public(tmp_path, host):
    p = run("serve", str(tmp_path), "--host", host, "--port", "0")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--public" in p.stderr.decode(), p.stderr
    assert b"http://" not in p.stdout


def test_first_stdout_line_is_the_url(server):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url), server.url
    assert 0 < server.port < 65536
    r = httpc(server, "GET", "/_/health")
    assert r.status == 200


def test_host_127_0_0_2(start, root):
    (root / "a.txt").write_bytes(b"on 127.0.0.2\n")
    s = start("--host", "127.0.0.2")
    assert re.fullmatch(r"http://127\.0\.0\.2:\d+/", s.url), s.url
    r = httpc(s, "GET", "/a.txt")
    assert (r.status, r.body) == (200, b"on 127.0.0.2\n")
    # Its listeners (one per loop) are on 127.0.0.2 alone. (Asked of its own sockets: a
    # connect to 127.0.0.1 on that port could reach another program's listener there.)
    assert {loc for loc, _, st in proc_tcp_sockets(s.pid) if st == "LISTEN"} == {
        ("127.0.0.2", s.port)}


def test_host_ipv6_loopback(start, root):
    try:
        t = socket.socket(socket.AF_INET6)
        t.bind(("::1", 0))
        t.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    (root / "a.txt").write_bytes(b"v6\n")
    s = start("--host", "::1")
    assert re.fullmatch(r"http://\[::1\]:\d+/", s.url), s.url
    assert s.host == "::1"
    r = exchange(s, "GET", "/a.txt")  # Host: [::1]:PORT
    assert (r.status, r.body) == (200, b"v6\n"), r
    assert_alive(s)


# --- port in use -------------------------------------------------------------------------

HOLDER = r"""
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(5)
print(s.getsockname()[1], flush=True)
time.sleep(30)
"""


def test_port_in_use_names_holder(tmp_path):
    holder = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER], stdout=subprocess.PIPE)
    try:
        import select
        r, _, _ = select.select([holder.stdout], [], [], 5)
        assert r, "python listener did not start"
        port = int(holder.stdout.readline())
        p = run("serve", str(tmp_path), "--port", str(port))
        err = p.stderr.decode()
        assert p.returncode == 1, (p.returncode, err)
        assert b"http://" not in p.stdout
        assert f"pid {holder.pid}" in err, err
        assert re.search(rf"python3? \(pid {holder.pid}\)", err), err
        assert "--port 0" in err, err
        assert holder.poll() is None, "the listener was disturbed"
    finally:
        holder.kill()
        holder.wait(5)


@pytest.mark.parametrize("state,holder", [
    ("open", "a connection of python3 (pid {pid})"),  # formatted in the test: ids must not vary
    ("TIME-WAIT", "a connection that ended, in TIME-WAIT (the kernel frees the port within 60 s)"),
    ("FIN-WAIT-2", "a closed connection the kernel is still ending (FIN-WAIT-2: its peer has not closed its "
                   "end; freed within {fin} s, net.ipv4.tcp_fin_timeout)"),
])
def test_port_used_by_a_connection_names_it(tmp_path, state, holder):
    """A listener's bind fails on a port that a connection uses as its own (when one of
    them lacks SO_REUSEADDR), and on what the kernel keeps of a closed one: the message
    says which, where it said the owner was "not visible to this user"."""
    port, socks = connection_on_a_port(state)
    holder = holder.format(pid=os.getpid(), fin=fin_timeout())
    try:
        p = run("serve", str(tmp_path), "--port", str(port))
        assert (p.returncode, p.stderr.decode()) == (1, f"loopkit serve: port {port} on 127.0.0.1 is held by "
                                                        f"{holder}; try --port 0 for any free port\n")
        r = subprocess.run([LOOPKIT, "isolate", "-p", f"{port}:80", "--", "true"], capture_output=True,
                           text=True, timeout=10)
        assert (r.returncode, r.stderr) == (1, f"loopkit isolate: -p {port}:80: port {port} on 127.0.0.1 is held "
                                               f"by {holder}; try -p 0:80 for any free port\n")
    finally:
        for x in socks:
            x.close()


# --- signals -----------------------------------------------------------------------------

def spawn(root, *args):
    return Server(str(root), args)


def finish(s, timeout=10):
    """Waits for exit; kills on timeout. Returns (rc, seconds waited)."""
    t0 = time.monotonic()
    try:
        rc = s.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        s.proc.wait()
        pytest.fail(f"loopkit did not exit within {timeout} s")
    return rc, time.monotonic() - t0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0(root, sig):
    s = spawn(root)
    try:
        assert httpc(s, "GET", "/_/health").status == 200
        s.proc.send_signal(sig)
        rc, waited = finish(s)
        assert rc == 0, (rc, s.stderr())
        assert waited < 3, waited
    finally:
        s.stop()


def test_sigterm_with_idle_keepalive_connection_exits_promptly(root):
    s = spawn(root)  # default --grace 5: an idle connection is not in flight
    try:
        c = Conn(s)
        c.request("GET", "/_/health")
        assert c.response().status == 200
        s.proc.send_signal(signal.SIGTERM)
        rc, waited = finish(s)
        assert rc == 0
        assert waited < 3, f"idle keep-alive connection held shutdown for {waited:.1f} s"
        c.close()
    finally:
        s.stop()


def test_inflight_request_completes_after_sigterm(root):
    s = spawn(root, "--grace", "5")
    try:
        c = Conn(s, timeout=6)
        t0 = time.monotonic()
        c.request("GET", "/_/delay/1")
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # docs/serve.md: the listeners close at once, so a new client is refused.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((s.host, s.port), timeout=2).close()
        r = c.response()
        elapsed = time.monotonic() - t0
        assert r.status == 200, r
        assert isinstance(r.json(), dict), r
        assert 0.9 <= elapsed < 3, elapsed
        c.close()
        rc, waited = finish(s)
        assert rc == 0, (rc, s.stderr())
        assert waited < 2, f"exit {waited:.1f} s after the last client left"
        assert "grace time" not in s.stderr(), s.stderr()  # nothing was cut
    finally:
        s.stop()


def test_grace_bounds_shutdown(root):
    s = spawn(root, "--grace", "1")
    try:
        c = Conn(s, timeout=8)
        c.request("GET", "/_/delay/6")
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        rc, waited = finish(s, timeout=8)
        assert rc == 0, (rc, s.stderr())
        assert 0.5 < waited < 2.5, f"exit {waited:.1f} s after SIGTERM with --grace 1"
        # The in-flight request was cut short at the end of the grace time: its connection
        # is closed without an answer (nothing half-sent).
        closed, got = c.wait_closed(2)
        assert (closed, got) == (True, b""), got
        c.close()
        # ... and the log says so, once, with the flag that gives more time
        err = s.stderr()
        assert err.count("the grace time (1 s) ran out: 1 connection still in flight closed; "
                         "--grace gives more") == 1, err
    finally:
        s.stop()


def test_serve_dir_is_a_file_fails(tmp_path):
    f = tmp_path / "file.txt"
    f.write_bytes(b"x")
    p = run("serve", str(f), "--port", "0")
    assert p.returncode == 1, p.returncode  # cannot start, like a missing directory
    assert b"http://" not in p.stdout
    assert "file.txt" in p.stderr.decode(), p.stderr


def test_download_in_flight_completes_after_sigterm(root):
    import hashlib
    data = os.urandom(32 * 1024 * 1024)  # far more than socket buffers hold
    (root / "big.bin").write_bytes(data)
    s = spawn(root, "--grace", "5")
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(10)
        sock.connect((s.host, s.port))
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        buf = bytearray()
        while len(buf) < 100 * 1024:  # the transfer is under way
            buf += sock.recv(65536)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert s.alive(), "exited with a download in flight"
        while True:
            b = sock.recv(1 << 20)
            if not b:
                break
            buf += b
        sock.close()
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert len(body) == len(data), f"download cut short after SIGTERM: {len(body)} bytes"
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
        rc, _ = finish(s)
        assert rc == 0
    finally:
        s.stop()


def _help_examples():
    """Every "$ loopkit ..." line of every verb's --help examples (the man page's)."""
    top = subprocess.run([LOOPKIT, "--help"], capture_output=True, text=True, timeout=5).stdout
    verbs = re.findall(r"^  (\w+)  ", top.split("verbs:", 1)[1].split("options:", 1)[0], re.M)
    out = []
    for v in verbs:
        text = subprocess.run([LOOPKIT, v, "--help"], capture_output=True, text=True, timeout=5).stdout
        subs = re.findall(r"^  (\w+)  ", text.split("s:\n", 1)[1].split("options:", 1)[0], re.M) \
            if "\n'loopkit " + v + " help" in text else []
        # a verb with modes (bench) has its examples under each mode
        for t in ([] if subs else [text]) + [subprocess.run([LOOPKIT, v, s, "--help"], capture_output=True,
                                                            text=True, timeout=5).stdout for s in subs]:
            assert "\nexamples:\n" in t, (v, t[-300:])
            out += [line[4:] for line in t.split("\nexamples:\n", 1)[1].splitlines()
                    if line.startswith("  $ loopkit ")]
    return verbs, out


def test_every_help_example_parses():
    """--help ends with examples; each one's options and values are ones the verb takes
    (its arguments are parsed up to a --help put at the end, which exits 0)."""
    import shlex
    verbs, examples = _help_examples()
    assert len(verbs) >= 12 and len(examples) >= 30, (verbs, examples)
    for ex in examples:
        argv = []
        for word in shlex.split(ex):
            if word in ("&", "&&", "|", ";", "||"):
                break
            argv.append(word)
        if "--" in argv:  # isolate's CMD: not loopkit's to parse
            argv = argv[:argv.index("--")]
        p = subprocess.run([LOOPKIT] + argv[1:] + ["--help"], capture_output=True, text=True, timeout=5)
        assert p.returncode == 0 and p.stdout.startswith("usage: "), (ex, p.returncode, p.stderr)
