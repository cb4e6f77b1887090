"""The command line itself: short and attached values, `--`, did-you-mean with one usage
line, hints for other tools' habits, `help VERB`, value errors that name the bound, and
the serve start-up checks that live in the command layer (LAN URLs with --public, an
IPv4-mapped --host, an unreadable DIR, --open)."""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import free_port, LOOPKIT, hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(30)


def run(*args, timeout=10, cwd=None, env=None, prefix=()):
    return subprocess.run([*prefix, LOOPKIT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def usage_error(p, *needles):
    """Exit 2, every needle on stderr, and one usage line rather than the option list."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    for n in needles:
        assert n in p.stderr, (n, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) <= 2 and "--help" not in lines[0], p.stderr
    assert p.stdout == "", p.stdout


class Serve:
    """`loopkit serve ARGS` started directly (no flags added), stopped by pid."""

    def __init__(self, *args, cwd=None, env=None, prefix=()):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*prefix, LOOPKIT, "serve", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=self.err, cwd=cwd, env=env)
        self.buf = b""

    def read_urls(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while self.buf.count(b"\n") < n:
            r, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
            if not r:
                raise AssertionError(f"no URL within {timeout} s: {self.buf!r} {self.stderr()}")
            b = os.read(fd, 4096)
            if not b:
                raise AssertionError(f"exited {self.proc.wait()}: {self.buf!r} {self.stderr()}")
            self.buf += b
        return self.buf.decode().splitlines()[:n]

    def stderr(self):
        # pread: a seek would move the offset the child writes at too (one open file),
        # and its next line would land over the start (CI read 'ry interface), read-only')
        data, off = b"", 0
        while chunk := os.pread(self.err.fileno(), 65536, off):
            data += chunk
            off += len(chunk)
        return data.decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        return self.proc.returncode


@pytest.fixture
def serve():
    started = []

    def _serve(*args, **kw):
        s = Serve(*args, **kw)
        started.append(s)
        return s

    yield _serve
    for s in started:
        assert s.stop() == 0, s.proc.returncode




def get(url, path, method="GET", body=None):
    m = re.match(r"http://([\d.]+):(\d+)/", url)
    c = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=5)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# --- values: short, attached, --name=value, clustered, -- -------------------------------

@pytest.mark.parametrize("args", [["-c2", "-i10ms"], ["-c", "2", "-i", "0.01"],
                                  ["--count=2", "--interval=10ms"], ["--count", "2", "-i.01"]])
def test_ping_values_every_way(args):
    p = run("ping", *args, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["summary"]["sent"] == 2, doc


def test_clustered_switches_and_attached_port(serve, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hi\n")
    port = free_port()
    s = serve(tmp_path, "-qwp%d" % port, "-t1")
    url = s.read_urls(1)[0]
    assert url == f"http://127.0.0.1:{port}/", url
    assert get(url, "/new.txt", "PUT", b"written\n")[0] == 201       # -w: writable
    assert (tmp_path / "new.txt").read_bytes() == b"written\n"
    assert get(url, "/a.txt") == (200, b"hi\n")
    time.sleep(0.2)
    assert "GET /a.txt" not in s.stderr() and "PUT" not in s.stderr(), s.stderr()  # -q


def test_double_dash_ends_options(serve, tmp_path):
    d = tmp_path / "-site"
    d.mkdir()
    (d / "a.txt").write_bytes(b"dash\n")
    s = serve("-p0", "-t1", "--", "-site", cwd=tmp_path)
    assert get(s.read_urls(1)[0], "/a.txt") == (200, b"dash\n")


def test_switch_with_value_and_missing_value():
    usage_error(run("ports", "--json=1"), "--json takes no value")
    usage_error(run("ping", "-c"), "-c needs a value (N)")
    usage_error(run("ping", "--count"), "--count needs a value (N)")


@pytest.mark.parametrize("args,msg", [
    (["serve", "--max-body", "12X"], "--max-body 12X: unknown unit 'X' (use K, M, G or T)"),
    (["serve", "--port", "70000"], "--port 70000: more than 65535"),
    (["serve", "-t", "0"], "-t 0: less than 1"),
    (["serve", "--grace", "-1"], "--grace -1: negative"),
    (["serve", "--log", "xml"], "--log xml: not one of common|json"),
    (["ping", "-i", "0"], "-i 0: less than 1ms"),
    (["ping", "-i", "2x"], "-i 2x: unknown unit 'x'"),
    (["ping", "-s", "65508"], "-s 65508: more than 65507"),
    (["port", "--pool", "9-1"], "--pool 9-1: the first number is larger than the second"),
    (["bench", "tcp", "-l", "1.5M"], "-l 1.5M: sizes are whole numbers"),
    (["who", "x"], "PORT x: not a number"),
])
def test_value_errors_name_flag_value_and_bound(args, msg):
    p = run(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert msg in p.stderr, p.stderr


def test_durations_take_units(serve, tmp_path):
    s = serve(tmp_path, "-p0", "-t1", "--idle-timeout", "300ms", "--grace", "1m")
    url = s.read_urls(1)[0]
    m = re.match(r"http://([\d.]+):(\d+)/", url)
    c = socket.create_connection((m.group(1), int(m.group(2))), timeout=5)
    c.sendall(b"GET /_/get HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    t0 = time.monotonic()
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    c.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    assert time.monotonic() - t0 < 2.5, "--idle-timeout 300ms was not 0.3 s"


def test_repeatable_flag_limit():
    many = [a for i in range(65) for a in ("--allow-host", f"h{i}.test")]
    p = run("serve", "-p0", *many)
    assert p.returncode == 2 and "--allow-host h64.test: given more than 64 times" in p.stderr, p.stderr


# --- mistakes and habits -----------------------------------------------------------------

def test_typo_suggests_the_flag_with_one_usage_line():
    p = run("serve", "--prot", "8080")
    usage_error(p, "unknown option --prot; did you mean --port?",
                "usage: loopkit serve [DIR] [OPTIONS]")
    usage_error(run("doctor", "--jsn"), "did you mean --json?")
    usage_error(run("bench", "http", "http://127.0.0.1/", "--pipelin", "2"),
                "did you mean --pipeline?")


def test_unknown_option_far_from_any_gets_no_guess():
    p = run("serve", "--frobnicate")
    usage_error(p, "unknown option --frobnicate")
    assert "did you mean" not in p.stderr


def test_unknown_verb_suggests_the_closest():
    usage_error(run("serv"), "unknown verb 'serv'; did you mean 'serve'?")
    usage_error(run("pots"), "did you mean 'port")
    p = run("frobnicate")
    usage_error(p, "unknown verb 'frobnicate'")
    assert "did you mean" not in p.stderr
    usage_error(run("bench", "tpc"), "unknown mode 'tpc'; did you mean 'tcp'?")


def test_iperf3_and_wrk_habits_get_a_hint_not_a_run():
    t0 = time.monotonic()
    p = run("bench", "tcp", "-t", "5")
    usage_error(p, "unknown option -t", "-d/--duration", "iperf3")
    assert time.monotonic() - t0 < 2, "it ran a benchmark"
    usage_error(run("bench", "http", "http://127.0.0.1:1/", "-c", "64"),
                "-C/--connections", "wrk's -c")
    usage_error(run("ports", "-tlnp"), "--tcp", "ss's -t")
    usage_error(run("serve", "-b", "0.0.0.0"), "--host")


def test_help_verb_is_verb_help():
    for path in (["serve"], ["doctor"], ["bench"], ["bench", "tcp"], ["bench", "http"]):
        a = run("help", *path)
        b = run(*path, "--help")
        c = run(*path, "-h")
        assert a.returncode == b.returncode == c.returncode == 0, (path, a.stderr)
        assert a.stdout == b.stdout == c.stdout, path
        assert a.stdout.startswith(f"usage: loopkit {' '.join(path)} "), a.stdout
    usage_error(run("help", "serv"), "did you mean 'serve'?")


def test_serve_with_a_port_number_hints_port(tmp_path):
    p = run("serve", "8080", cwd=tmp_path)
    usage_error(p, "there is no directory 8080; did you mean --port 8080?")


def test_serve_with_a_numbered_directory_serves_it(serve, tmp_path):
    (tmp_path / "8080").mkdir()
    (tmp_path / "8080" / "a.txt").write_bytes(b"numbered\n")
    s = serve("8080", "-p0", "-t1", cwd=tmp_path)
    assert get(s.read_urls(1)[0], "/a.txt") == (200, b"numbered\n")


def test_ports_with_a_number_points_to_who():
    usage_error(run("ports", "62893"), "loopkit who 62893")


def test_help_calls_serve_http_and_ftp():
    for args in (["--help"], ["serve", "--help"]):
        out = run(*args).stdout
        assert re.search(r"HTTP(/1\.1)? and FTP", out), out
        assert not re.search(r"HTTP(/1\.1)? server", out), out


# --- serve start-up ------------------------------------------------------------------------

def test_ipv4_mapped_host_is_explained(tmp_path):
    p = run("serve", tmp_path, "--host", "::ffff:127.0.0.1", "-p0")
    assert p.returncode == 2, p.stderr
    assert "IPv4-mapped" in p.stderr and "use --host 127.0.0.1" in p.stderr, p.stderr
    assert "Invalid argument" not in p.stderr and p.stdout == ""


NETNS_OK = shutil.which("unshare") and shutil.which("ip") and subprocess.run(
    ["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_public_wildcard_lists_the_lan_urls(tmp_path):
    # A namespace of our own with a "LAN" interface: nothing listens beyond it.
    script = ("ip link set lo up && ip link add lk0 type veth peer name lk1 && "
              "ip addr add 10.98.76.5/24 dev lk0 && ip link set lk0 up && exec \"$@\"")
    s = Serve(tmp_path, "--host", "0.0.0.0", "--public", "-p0", "-t1",
              prefix=("unshare", "-rn", "sh", "-c", script, "sh"))
    try:
        urls = s.read_urls(4)
        port = urls[0].rsplit(":", 1)[1].rstrip("/")
        assert urls == [f"http://127.0.0.1:{port}/", f"http://10.98.76.5:{port}/",
                        f"ftp://127.0.0.1:{port}/", f"ftp://10.98.76.5:{port}/"], urls
        assert "WARNING" in s.stderr() and "NETWORK" in s.stderr()
    finally:
        assert s.stop() == 0


def as_other_user():
    """A prefix that runs a command as nobody, when we are root (root reads any directory)."""
    if os.geteuid() != 0:
        return ()
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root"
    return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.fixture
def shared_tmp():
    d = tempfile.mkdtemp(prefix="loopkit-perm-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    for root, dirs, _ in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
    shutil.rmtree(d)


@pytest.mark.parametrize("mode", [0o000, 0o311])
def test_unreadable_directory_exits_1_at_start(shared_tmp, mode):
    d = os.path.join(shared_tmp, "secret")
    os.mkdir(d)
    open(os.path.join(d, "a.txt"), "w").write("x")
    os.chmod(d, mode)
    p = run("serve", d, "-p0", "-t1", prefix=as_other_user(), timeout=10)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert f"cannot read directory {d}" in p.stderr and "Permission denied" in p.stderr, p.stderr
    # another user's directory: chmod u+rx is not theirs to run
    assert "its owner can chmod o+rx it, or serve it as its owner" in p.stderr, p.stderr
    assert p.stdout == ""


def test_host_with_a_port_names_the_port_flag(tmp_path):
    p = run("serve", str(tmp_path), "--host", "127.0.0.1:8080", timeout=10)
    assert p.returncode == 2, p.stderr
    assert "--host 127.0.0.1:8080 is not an IP address: give the port with --port 8080" in p.stderr, p.stderr


def test_readable_directory_starts_as_the_same_user(serve, shared_tmp):
    # The control: the same user, a directory it may read, serves.
    d = os.path.join(shared_tmp, "open")
    os.mkdir(d)
    open(os.path.join(d, "a.txt"), "w").write("open\n")
    os.chmod(os.path.join(d, "a.txt"), 0o644)
    s = serve(d, "-p0", "-t1", prefix=as_other_user())
    assert get(s.read_urls(1)[0], "/a.txt") == (200, b"open\n")


def open_with_browser(serve, tmp_path, entry):
    """Starts serve --open with $BROWSER set to entry, where {b} names a fake browser
    that records its arguments; returns (the server's URL, the arguments, one a line)."""
    record = tmp_path / "opened"
    browser = tmp_path / "fake-browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}.tmp && mv {record}.tmp {record}\n")
    browser.chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    s = serve(root, "-p0", "-t1", "--open", env=dict(os.environ, BROWSER=entry.format(b=browser)))
    url = s.read_urls(1)[0]
    deadline = time.monotonic() + 5
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return url, record.read_text()


def test_open_starts_the_browser_with_the_url(serve, tmp_path):
    url, args = open_with_browser(serve, tmp_path, "{b}:firefox")
    assert args == url + "\n"


@pytest.mark.parametrize("entry,want", [
    ("{b} --new-tab %s", ["--new-tab", "{url}"]),  # xdg-utils' and Python's "%s"
    ("{b} -a 100%% --url=%s --x", ["-a", "100%", "--url={url}", "--x"]),
    ("{b}  -n", ["-n", "{url}"]),  # no %s: the URL goes last
    ("/no/such/browser:{b} %s", ["{url}"]),  # the first entry that starts
    ("{b} 'a b' \"c %s\" e\\ f", ["a b", "c {url}", "e f"]),  # words as a shell (shlex) splits them
    ("{b}\t-x", ["-x", "{url}"]),
    ("{b} " + "w " * 16 + ":{b} ok", ["ok", "{url}"]),  # too many words: the next entry
])
def test_open_browser_entry_with_arguments(serve, tmp_path, entry, want):
    url, args = open_with_browser(serve, tmp_path, entry)
    assert args.splitlines() == [w.format(url=url) for w in want]


def test_open_without_a_browser_keeps_serving(serve, tmp_path):
    env = dict(os.environ, BROWSER=str(tmp_path / "no-such-browser"))
    s = serve(tmp_path, "-p0", "-t1", "-o", env=env)
    assert get(s.read_urls(1)[0], "/_/get")[0] == 200
    time.sleep(0.2)
    assert "--open: cannot start" in s.stderr() and "no-such-browser" in s.stderr(), s.stderr()


@pytest.mark.parametrize("args", [
    ["who", "1\nfake\x1b[2J"],
    ["serve", "--host", "127.0.0.1\nfake\x1b[2J"],
    ["isolate", "-p", "1\nfake\x1b[2J:2", "--", "true"],
    ["proxy", "--api", "off", "--toxic", "x\nfake\x1b[2J", "127.0.0.1:9"],
    ["proxy", "--api", "off", "--toxic", "latency,latency=1\nfake\x1b[2J", "127.0.0.1:9"],
    ["proxy", "--api", "off", "127.0.0.1:1\nfake\x1b[2J"],
    ["proxy", "--api", "off", "--proxy", "a=127.0.0.1:1\nfake\x1b[2J"],
    ["scan", "127.0.0.1\nfake\x1b[2J"],
], ids=lambda a: " ".join(a[:2]).replace("\n", "|"))
def test_an_error_that_quotes_an_argument_escapes_its_control_bytes(args):
    """What the user gave comes back escaped in the error: a newline cannot forge a
    line of its own, ESC cannot drive the terminal (both came back raw)."""
    r = subprocess.run([LOOPKIT, *args], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "\x1b" not in r.stderr and "\nfake" not in r.stderr, r.stderr
    assert "\\x0afake\\x1b[2J" in r.stderr, r.stderr
