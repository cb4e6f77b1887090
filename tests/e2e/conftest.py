"""Shared fixtures: start the real loopkit binary on a free loopback port.

Every server a fixture starts is checked before it is stopped (libuv's rule: a test ends
with nothing left open): its descriptors are back to the set it had once started, it has
no child processes, and no upload temporary (".NAME.lk-XXXXXX") is left in its root.

Under pytest-xdist (`make test-e2e` runs two workers) tests marked `alone` run with
nothing else beside them, and tests marked `uses(NAME)` never overlap another test that
uses NAME; see _xdist_locks below.
"""
import fcntl
import os
import signal
import socket
import subprocess
import struct
import tempfile
import time

import pytest

LOOPKIT = os.environ.get("LOOPKIT") or os.path.join(
    os.path.dirname(__file__), "..", "..", "loopkit")
LOOPKIT = os.path.abspath(LOOPKIT)


# Every server runs two event loops unless a test asks otherwise, so the multi-thread
# path (SO_REUSEPORT listeners, per-thread caches and logs) is what the suite exercises.
# Tests about one loop (exact ordering, one loop's descriptor budget) pass --threads 1.
DEFAULT_THREADS = 2


def with_threads(args):
    """args as a list, with --threads DEFAULT_THREADS added unless it sets --threads."""
    args = list(args)
    if "--threads" not in args:
        args += ["--threads", str(DEFAULT_THREADS)]
    return args


class StderrFile:
    """A child's stderr in an unnamed temporary file: nothing is left in /tmp whatever
    becomes of the test (a failed start, a kill, no stop at all); the file goes when it
    is closed or the test process exits. `path` reopens it (/proc/self/fd/N) while it is
    open; `text()` reads it, also after `close()` (what it held then)."""

    def __init__(self, prefix):
        self.f = tempfile.TemporaryFile(prefix=prefix)
        self._final = None

    def fileno(self):
        return self.f.fileno()

    @property
    def path(self):
        return f"/proc/self/fd/{self.f.fileno()}"

    def read(self):
        if self._final is not None:
            return self._final
        self.f.flush()
        out, off = b"", 0
        while True:
            b = os.pread(self.f.fileno(), 1 << 20, off)
            if not b:
                return out
            out += b
            off += len(b)

    def text(self):
        return self.read().decode(errors="replace")

    @property
    def closed(self):
        return self.f.closed

    def close(self):
        if not self.f.closed:
            self._final = self.read()
            self.f.close()


def stop_child(proc, sig=signal.SIGTERM, timeout=10, communicate=False):
    """Sends sig to a started loopkit and waits up to timeout s for it to exit; one that
    ignores it is killed and the test fails. Returns its stdout when communicate (the
    rest it wrote), else None."""
    out = None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            if communicate:
                out, _ = proc.communicate(timeout=timeout)
            else:
                proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{' '.join(map(str, proc.args[:2]))} did not exit "
                                 f"{timeout} s after signal {sig}")
    return out


class Server:
    """A running `loopkit serve`; stderr (the access log) goes to an unnamed file."""

    @property
    def errpath(self):
        return self._err.path

    def __init__(self, root, args=(), env=None):
        self.root = root
        self._err = StderrFile("loopkit-err-")
        cmd = [LOOPKIT, "serve", root, "--port", "0"] + with_threads(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err.fileno(),
                                     env=env)
        line = self._readline(10)
        assert line.startswith("http://"), f"unexpected first line {line!r}: {self.stderr()}"
        self.url = line.strip()
        hostport = self.url[len("http://"):].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        self.host = host.strip("[]")
        self.port = int(port)
        self.pid = self.proc.pid

    def _readline(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            self.proc.kill()
            raise AssertionError("loopkit did not print its URL: " + self.stderr())
        return self.proc.stdout.readline().decode()

    def stderr(self):
        return self._err.text()

    def settle(self, timeout=5):
        """Waits until every thread of the server sleeps in epoll_wait (started and idle),
        then records its descriptors as the baseline that leaks() compares with."""
        def idle():
            # Every event loop sleeps in epoll_wait; the process-lookup thread
            # ("lk-peers", present when HTTP and FTP share the port) waits for work
            # (in futex, after its first reading of /proc).
            tasks = os.listdir(f"/proc/{self.pid}/task")
            peers = [t for t in tasks if thread_name(self.pid, t) == "lk-peers"]
            if any(thread_syscall(self.pid, t) != FUTEX_SYSCALL for t in peers):
                return False
            return len(proc_event_loops(self.pid)) == len(tasks) - len(peers)
        assert wait_for(idle, timeout, step=0.002), (
            f"server threads not idle {timeout} s after start: {os.listdir(f'/proc/{self.pid}/task')}")
        self.base_fds = {fd: t for fd, t in proc_fd_targets(self.pid).items()
                         if not (t == "/proc" or t.startswith("/proc/"))}  # as leaks() counts
        return self

    def leaks(self, held=0, timeout=3):
        """What the server holds beyond its baseline, as a description, or None when all is
        back: descriptors (`held` extra sockets allowed: connections the test still holds;
        the server closes its side of a finished one shortly after the client), child
        processes, upload temporaries in the root. Waits up to `timeout` for the fds."""
        def extra():
            # /proc and what is below it: the peer-lookup thread reading a client's
            # descriptors or threads at this moment (it opens and closes them in turn).
            now = {fd: t for fd, t in proc_fd_targets(self.pid).items()
                   if not (t == "/proc" or t.startswith("/proc/"))}
            return ({fd: t for fd, t in now.items() if self.base_fds.get(fd) != t},
                    {fd: t for fd, t in self.base_fds.items() if now.get(fd) != t})
        def clean():
            more, gone = extra()
            return len(more) == held and not gone and all(
                t.startswith("socket:") for t in more.values())
        wait_for(clean, timeout, step=0.005)
        more, gone = extra()
        problems = []
        if len(more) != held or not all(t.startswith("socket:") for t in more.values()):
            problems.append(f"{len(more)} descriptors beyond the {held} the test holds: "
                            + describe_fds(self.pid, more))
        if gone:
            problems.append(f"descriptors of the baseline closed or replaced: {gone}")
        kids = proc_children(self.pid)
        if kids:
            problems.append(f"child processes {kids}")
        temps = upload_temporaries(self.root)
        if temps:
            problems.append(f"upload temporaries left: {temps}")
        return "; ".join(problems) or None

    def connect(self, timeout=5):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((self.host, self.port))
        return s

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        stop_child(self.proc, sig, timeout)
        self._err.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------
# Running in parallel (pytest-xdist, `make test-e2e`): markers and locks.
# ---------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "alone: the test needs the machine to itself (load, benchmarks, descriptor "
                   "exhaustion, RSS or latency measured under load); under xdist nothing "
                   "else runs meanwhile")
    config.addinivalue_line(
        "markers", "uses(name, ...): the test holds a shared resource (a fixed port, a fixed "
                   "port pool); under xdist tests using the same name never overlap")


def _flock(path, mode):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, mode)
    return fd


@pytest.fixture(autouse=True)
def _xdist_locks(request, tmp_path_factory):
    """Under xdist, every test holds a readers-writer lock on a file shared by the run's
    workers: shared by ordinary tests, exclusive for `alone` ones; a turnstile taken
    first keeps a waiting `alone` test from being starved by a stream of shared holders.
    `uses(NAME)` locks are taken after it (one order, so no deadlock). Without xdist the
    tests run one at a time anyway and nothing is locked. Being the first autouse fixture
    of the tree, the wait happens before a test's hard timeout starts."""
    if not hasattr(request.config, "workerinput"):
        yield
        return
    d = tmp_path_factory.getbasetemp().parent  # .../pytest-N, shared by popen-gw0, gw1...
    alone = request.node.get_closest_marker("alone") is not None
    names = sorted({n for m in request.node.iter_markers("uses") for n in m.args})
    turnstile = _flock(d / "lk-turnstile.lock", fcntl.LOCK_EX)
    try:
        main = _flock(d / "lk-machine.lock", fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
    finally:
        os.close(turnstile)
    held = [main] + [_flock(d / f"lk-uses-{n}.lock", fcntl.LOCK_EX) for n in names]
    try:
        yield
    finally:
        for fd in reversed(held):
            os.close(fd)  # closing the descriptor releases its flock


@pytest.fixture
def figure(request):
    """figure(text): a measured figure worth reading in every run (peak descriptors, RSS,
    latencies under abuse). Attached to the test's report, so the terminal summary lists
    it at the end of the run, with or without xdist."""
    return lambda text: request.node.user_properties.append(("figure", text))


_FIGURES = []  # the figures of the run, gathered from the reports (under xdist: the workers')


def pytest_runtest_logreport(report):
    if report.when == "call":
        _FIGURES.extend(f"{report.nodeid}: {v}" for k, v in report.user_properties
                        if k == "figure")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput") or not _FIGURES:
        return
    terminalreporter.section("figures")
    for text in _FIGURES:
        terminalreporter.write_line(text)


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return d


def stop_checked(servers):
    """Teardown of the fixtures' servers: each must be alive, hold nothing beyond its
    baseline (Server.leaks), and exit 0 on SIGTERM. Every server is stopped whatever
    happens meanwhile (a failed check, a test's hard timeout firing during teardown)."""
    failures, checked = [], {}
    try:
        for s in servers:
            alive = s.alive()
            leak = s.leaks() if alive and getattr(s, "base_fds", None) is not None else None
            checked[s] = (alive, leak)
    finally:
        for s in servers:
            log = s.stderr()[-4000:]
            try:
                rc = s.stop()
            except AssertionError as e:  # killed after the grace: the others still stop
                failures.append(f"{e}:\n{log}")
                continue
            alive, leak = checked.get(s, (True, None))
            if not alive:
                failures.append("server died during the test:\n" + log)
            elif rc != 0:
                failures.append(f"server exited {rc}:\n" + log)
            if leak:
                failures.append(f"server (pid {s.pid}) left open at the end of the test: {leak}")
    assert not failures, "\n".join(failures)


@pytest.fixture
def start(root):
    """start(*args, root_dir=None, env=None) -> Server, settled (see Server.settle);
    every server is checked for leaks and stopped at teardown (stop_checked)."""
    servers = []

    def _start(*args, root_dir=None, env=None):
        s = Server(str(root_dir or root), args, env)
        servers.append(s)
        return s.settle()

    yield _start
    stop_checked(servers)


@pytest.fixture
def server(start):
    return start()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only), unmounted after the servers serving it are stopped (ask
    for it before start/ftp_start, so it is set up first and torn down last)."""
    if os.geteuid() != 0:
        pytest.skip("a full-disk test needs root (to mount a 2 MiB tmpfs)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, timeout=10)
    if p.returncode != 0:
        pytest.skip("cannot mount a 2 MiB tmpfs here: " + p.stderr.decode(errors="replace"))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def raw(server, data, timeout=5, read_until_close=True):
    """Send raw bytes, return everything the server sends until it closes (or timeout)."""
    s = server.connect(timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                if read_until_close:
                    raise
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Helpers shared by the test modules (raw HTTP framing, curl, http.client).
# ---------------------------------------------------------------------------
import http.client  # noqa: E402
import json as _json  # noqa: E402
import shutil  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"


class Response:
    """One parsed HTTP response."""

    def __init__(self, version, status, reason, headers, body, head_bytes=b""):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), names as sent
        self.body = body
        self.head_bytes = head_bytes

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has(self, name):
        return self.header(name) is not None

    def tokens(self, name):
        """Comma-separated header values as a set of lower-case tokens."""
        out = set()
        for v in self.header_all(name):
            out |= {t.strip().lower() for t in v.split(",") if t.strip()}
        return out

    def closes(self):
        return "close" in self.tokens("connection")

    def json(self):
        return _json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return (f"<Response {self.status} {self.reason!r} headers={self.headers!r} "
                f"body={self.body[:300]!r}{'...' if len(self.body) > 300 else ''}>")


class Conn:
    """A raw client connection: send bytes, read responses one at a time.

    Built from a server (a real socket) or from bytes already received (data=)."""

    def __init__(self, server=None, timeout=5, data=None, sock=None):
        self.server = server
        self.sock = sock or (server.connect(timeout) if server is not None and data is None
                             else None)
        self.buf = data or b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=None, body=None, version="HTTP/1.1",
                host=True):
        self.send(reqbytes(self.server, method, target, headers, body, version, host))

    def _recv(self):
        if self.sock is None or self.eof:
            raise EOFError("connection closed; have %r" % self.buf[:300])
        try:
            b = self.sock.recv(1 << 20)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            raise EOFError("connection closed; have %r" % self.buf[:300])
        return b

    def _fill(self):
        self.buf += self._recv()

    def read_until(self, sep):
        while sep not in self.buf:
            self._fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        if len(self.buf) < n:
            parts, have = [self.buf], len(self.buf)
            try:
                while have < n:
                    b = self._recv()
                    parts.append(b)
                    have += len(b)
            finally:
                self.buf = b"".join(parts)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def response(self, method="GET"):
        """Reads one response (a 1xx interim response is returned like any other)."""
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        first = lines[0].decode("latin-1")
        parts = first.split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad status line {first!r}"
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.decode("latin-1").partition(":")
            assert sep, f"bad header line {ln!r}"
            headers.append((k, v.strip()))
        resp = Response(version, status, reason, headers, b"", head)
        if method == "HEAD" or status < 200 or status in (204, 304):
            return resp
        te = resp.tokens("transfer-encoding")
        if "chunked" in te:
            body = b""
            while True:
                line = self.read_until(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n", "chunk not followed by CRLF"
            resp.body = body
        elif resp.has("content-length"):
            resp.body = self.read_exact(int(resp.header("content-length")))
        else:
            resp.body = self.read_to_eof()
        return resp

    def final_response(self, method="GET"):
        """Reads responses until a non-1xx one and returns it."""
        while True:
            r = self.response(method)
            if r.status >= 200:
                return r

    def wait_closed(self, timeout=3):
        """Waits for the server to close. Returns (closed, extra bytes received)."""
        if self.sock is None:
            return True, self.buf
        self.sock.settimeout(timeout)
        got = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, self.buf + got
                self.sock.settimeout(left)
                b = self.sock.recv(65536)
                if not b:
                    return True, self.buf + got
                got += b
        except ConnectionResetError:
            return True, self.buf + got
        except socket.timeout:
            return False, self.buf + got

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def hostport(server):
    return f"[{server.host}]:{server.port}" if ":" in server.host else f"{server.host}:{server.port}"


def reqbytes(server, method, target, headers=None, body=None, version="HTTP/1.1", host=True):
    """Builds a request. host=True adds 'Host: HOST:PORT' unless headers has one;
    a body gets a Content-Length unless headers already frame it."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        headers.insert(0, ("Host", hostport(server)))
    if isinstance(body, str):
        body = body.encode()
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    out = f"{method} {target} {version}\r\n".encode("latin-1")
    for k, v in headers:
        k = k if isinstance(k, bytes) else k.encode("latin-1")
        v = v if isinstance(v, bytes) else v.encode("latin-1")
        out += k + b": " + v + b"\r\n"
    return out + b"\r\n" + (body or b"")


def parse_responses(data, methods=()):
    """All complete responses in data (bytes read until close), in order."""
    c = Conn(data=data)
    out = []
    methods = list(methods)
    while c.buf:
        m = methods[len(out)] if len(out) < len(methods) else "GET"
        try:
            out.append(c.response(m))
        except EOFError:
            break
    return out


def exchange(server, method, target, headers=None, body=None, version="HTTP/1.1",
             host=True, timeout=5):
    """One request on a fresh raw connection; returns the final response."""
    with Conn(server, timeout) as c:
        c.request(method, target, headers, body, version, host)
        return c.final_response(method)


def httpc(server, method, path, headers=None, body=None, timeout=5):
    """One request with http.client; returns a Response."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        return Response(f"HTTP/{r.version / 10:.1f}", r.status, r.reason,
                        list(r.getheaders()), body)
    finally:
        conn.close()


def curl(*args, timeout=20, check=False):
    """Runs curl with a hard timeout; returns CompletedProcess (bytes)."""
    cmd = [CURL, "-sS", "--max-time", str(max(1, timeout - 2))] + [str(a) for a in args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=check)


def curl_req(server, path, *args, timeout=20):
    """curl URL+path with extra args; returns Response of the last response curl saw."""
    d = tempfile.mkdtemp(prefix="lk-curl-")
    hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
    try:
        p = curl("-D", hdr, "-o", body, *args, server.url.rstrip("/") + path, timeout=timeout)
        assert p.returncode == 0, f"curl failed rc={p.returncode}: {p.stderr!r}"
        with open(hdr, "rb") as f:
            raw_h = f.read()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        blocks = [b for b in raw_h.split(b"\r\n\r\n") if b.strip()]
        resp = Conn(data=blocks[-1] + b"\r\n\r\n").response("HEAD")
        resp.body = data
        resp.all_heads = blocks
        return resp
    finally:
        shutil.rmtree(d, ignore_errors=True)


def assert_alive(server, timeout=3):
    """The server still answers a fresh client."""
    assert server.alive(), "server process exited: " + server.stderr()[-2000:]
    r = exchange(server, "GET", "/_/health", timeout=timeout)
    assert r.status == 200, f"server did not answer the next client properly: {r!r}"


def segs_in(sock):
    """Segments the socket has received, SYN-ACK and pure ACKs included
    (tcp_info.tcpi_segs_in, Linux 4.2+)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 144)
    return struct.unpack_from("I", info, 140)[0]


def rcvbufs_of(pid):
    """The receive buffer (ss's rb) of each established TCP socket of process pid, in
    the caller's network namespace."""
    out = subprocess.run(["ss", "-tnmp", "state", "established"], capture_output=True,
                         text=True, check=True).stdout
    return [int(m.group(1)) for m in
            _re.finditer(r"pid=%d,fd=\d+\)\)[^\n]*\n?\s*skmem:\(r\d+,rb(\d+)" % pid, out)]


def wait_for(pred, timeout=3, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def write_tree(root, tree):
    """write_tree(root, {"a.txt": b"..", "d/": None, "d/b.txt": "x"})"""
    for rel, content in tree.items():
        p = os.path.join(str(root), rel)
        if rel.endswith("/"):
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def hard_timeout_fixture(limit):
    """Returns an autouse fixture that fails a test running longer than `limit` s
    (SIGALRM), so a hung server cannot hang the suite. Use in a module as
    `_hard_timeout = hard_timeout_fixture(20)`."""

    class HardTimeout(Exception):
        pass

    @pytest.fixture(autouse=True)
    def _fixture():
        def on_alarm(signum, frame):
            raise HardTimeout(f"test exceeded {limit} s")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    return _fixture


# ---------------------------------------------------------------------------
# FTP (docs/ftp-spec.txt): a server started with FTP enabled prints
# "http://HOST:PORT/" then "ftp://HOST:PORT/" (only the lines of enabled protocols).
# ---------------------------------------------------------------------------


class FtpServer(Server):
    """A running `loopkit serve` with FTP on. Reads every startup line the enabled
    protocols print (--proto: http,ftp by default). Attributes: lines (as printed),
    url (http line or None), ftp_url (ftp line or None), host, port. All Server methods
    work. stdout is unbuffered so a missing second line is noticed with a timeout."""

    def __init__(self, root, args=(), env=None, startup_timeout=10):
        self.root = root
        args = list(args)
        self._err = StderrFile("loopkit-err-")
        cmd = [LOOPKIT, "serve", root, "--port", "0"] + with_threads(args)
        protos = ["http", "ftp"]
        if "--proto" in args:
            protos = [p.strip() for p in args[args.index("--proto") + 1].split(",")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err.fileno(),
                                     env=env, bufsize=0)
        self.pid = self.proc.pid
        self._out = b""
        self.lines = []
        deadline = time.monotonic() + startup_timeout
        want = [p for p in ("http", "ftp") if p in protos]
        while len(self.lines) < len(want):
            line = self._read_line(deadline - time.monotonic())
            if line is None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"loopkit printed {self.lines!r}, expected lines for "
                                     f"{want}: {self.stderr()}")
            self.lines.append(line)
        self.url = self.ftp_url = None
        for line, proto in zip(self.lines, want):
            assert line.startswith(proto + "://"), (
                f"startup line {line!r} should start with {proto}:// (lines {self.lines!r}): "
                + self.stderr())
            if proto == "http":
                self.url = line
            else:
                self.ftp_url = line
        self.host = self.port = None
        for line in self.lines:
            hp = line.split("://", 1)[1].rstrip("/")
            host, port = hp.rsplit(":", 1)
            host, port = host.strip("[]"), int(port)
            if self.host is None:
                self.host, self.port = host, port
            else:
                assert (host, port) == (self.host, self.port), (
                    f"http and ftp lines name different addresses: {self.lines!r}")

    def _read_line(self, timeout):
        """One stdout line (stripped), or None when none completes within timeout."""
        import select
        deadline = time.monotonic() + max(0, timeout)
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            b = os.read(fd, 4096)
            if not b:
                return None
            self._out += b
        line, _, self._out = self._out.partition(b"\n")
        return line.decode().strip()

    def more_stdout(self, wait=0.3):
        """Whatever else the server prints on stdout within `wait` seconds."""
        import select
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            b = os.read(fd, 4096)
            if not b:
                break
            self._out += b
        out, self._out = self._out, b""
        return out.decode(errors="replace")


@pytest.fixture
def ftp_start(root):
    """ftp_start(*args, root_dir=None, env=None, sniff_ms=50) -> FtpServer.
    Adds --sniff-ms 50 (keeps tests fast) unless sniff_ms=None or the args set it, and
    --grace 1 unless set (a failed test may leave a transfer running at teardown).
    Every server is checked for leaks, stopped at teardown and must exit 0 (stop_checked)."""
    servers = []

    def _start(*args, root_dir=None, env=None, sniff_ms=50):
        a = list(args)
        if sniff_ms is not None and "--sniff-ms" not in a:
            a += ["--sniff-ms", str(sniff_ms)]
        if "--grace" not in a:
            a += ["--grace", "1"]
        s = FtpServer(str(root_dir or root), a, env)
        servers.append(s)
        return s.settle()

    yield _start
    stop_checked(servers)


# ---------------------------------------------------------------------------
# Abuse and fault tests (issue 6): process figures, descriptor limits, a wrapped
# binary (prlimit, valgrind), and a small raw FTP control client.
# ---------------------------------------------------------------------------
import re as _re  # noqa: E402
import resource as _resource  # noqa: E402
import shlex as _shlex  # noqa: E402


def proc_fds(pid):
    """Number of open descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_fd_targets(pid):
    """{fd: what it refers to ('socket:[INODE]', a path, 'anon_inode:[eventpoll]'...)}."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
    return out


def proc_socket_fds(pid):
    """{socket inode (str): fd} of a process."""
    return {t[8:-1]: fd for fd, t in proc_fd_targets(pid).items() if t.startswith("socket:[")}


def _tcp_rows(pid):
    """Rows of /proc/PID/net/tcp and tcp6 (the process's network namespace), split."""
    rows = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows += [r.split() for r in f.read().splitlines()[1:]]
        except OSError:
            continue
    return rows


def proc_port_fds(pid, port):
    """(listener fds, {client port: server fd}) of the TCP sockets on `port` a process holds."""
    inodes = proc_socket_fds(pid)
    listeners, conns = set(), {}
    for cols in _tcp_rows(pid):
        lport, rport = int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16)
        if lport == port and cols[9] in inodes:
            if cols[3] == "0A":  # LISTEN
                listeners.add(inodes[cols[9]])
            else:
                conns[rport] = inodes[cols[9]]
    return listeners, conns


# x86_64 numbers of the calls an idle event loop sleeps in; the first argument is the epoll
# descriptor: epoll_wait, epoll_pwait, epoll_pwait2.
EPOLL_WAIT_SYSCALLS = {232, 281, 441}


FUTEX_SYSCALL = 202  # x86_64


def thread_syscall(pid, tid):
    """The number of the system call the thread sleeps in, or None (running, gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            first = f.read().split()[:1]
        return int(first[0]) if first and first[0].isdigit() else None
    except OSError:
        return None


def thread_name(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_event_loops(pid):
    """{thread id: set of fds its epoll instance watches} for each thread of the process
    that sleeps in epoll_wait. Threads share the descriptor table, so /proc/PID/fd cannot
    tell them apart; the epoll descriptor a thread waits on (its syscall's first argument,
    /proc/PID/task/TID/syscall) and that descriptor's fdinfo ('tfd:' lines) can."""
    loops = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
            if not fields or not fields[0].isdigit() or int(fields[0]) not in EPOLL_WAIT_SYSCALLS:
                continue
            with open(f"/proc/{pid}/fdinfo/{int(fields[1], 16)}") as f:
                loops[int(tid)] = {int(ln.split()[1]) for ln in f if ln.startswith("tfd:")}
        except OSError:
            continue  # the thread woke up or exited meanwhile
    return loops


def loop_clients(server, socks):
    """{thread id: those of our client sockets socks whose server side that event loop
    watches}, for each thread of the server that sleeps in epoll_wait."""
    by_port = {c.getsockname()[1]: c for c in socks}
    fd_of = proc_port_fds(server.pid, server.port)[1]
    return {tid: [by_port[p] for p, fd in fd_of.items() if p in by_port and fd in watched]
            for tid, watched in proc_event_loops(server.pid).items()}


def proc_children(pid):
    """Pids of a process's children (all its threads')."""
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            continue
    return kids


def upload_temporaries(top):
    """Upload temporaries (".NAME.lk-XXXXXX", docs/serve.md) anywhere under top."""
    out = []
    for dirpath, dirnames, filenames in os.walk(str(top)):
        out += [os.path.join(dirpath, n) for n in filenames + dirnames
                if n.startswith(".") and ".lk-" in n]
    return sorted(out)


def describe_fds(pid, fds):
    """fd -> target, with the TCP state and addresses of sockets (to tell whose they are)."""
    by_inode = {cols[9]: cols for cols in _tcp_rows(pid)}
    out = []
    for fd, t in sorted(fds.items()):
        cols = by_inode.get(t[8:-1]) if t.startswith("socket:[") else None
        if cols:
            t += " tcp %s %s -> %s" % (_TCP_STATES.get(int(cols[3], 16), cols[3]),
                                       _hexaddr(cols[1]), _hexaddr(cols[2]))
        out.append(f"{fd}: {t}")
    return ", ".join(out)


def proc_status_kb(pid, key):
    """A kB figure of /proc/PID/status: VmRSS, VmHWM, VmSize..."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hexaddr(h):
    ip, port = h.split(":")
    b = bytes.fromhex(ip)
    if len(b) == 4:
        addr = socket.inet_ntop(socket.AF_INET, b[::-1])
    else:
        words = b"".join(b[i:i + 4][::-1] for i in range(0, 16, 4))
        addr = socket.inet_ntop(socket.AF_INET6, words)
    return addr, int(port, 16)


_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
               6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
               11: "CLOSING"}


def proc_tcp_sockets(pid):
    """[(local (addr, port), remote (addr, port), state)] of the TCP sockets a process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = _re.match(r"socket:\[(\d+)\]", t)
        if m:
            inodes.add(m.group(1))
    out = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[9] in inodes:
                out.append((_hexaddr(cols[1]), _hexaddr(cols[2]),
                            _TCP_STATES.get(int(cols[3], 16), cols[3])))
    return out


def is_loopback_addr(addr):
    return (addr.startswith("127.") or addr in ("::1", "::", "0.0.0.0")
            or addr.startswith("::ffff:127."))


def need_tool(name, package):
    """The path of a program scripts/deps installs. Its absence fails the test (a setup
    defect to fix) rather than skipping it, which would hide the assertions."""
    path = shutil.which(name)
    assert path, f"{name} is not installed: scripts/deps installs Debian's {package}"
    return path


def raise_nofile(need):
    """Raises this process's RLIMIT_NOFILE to at least `need` (the hard limit too, when
    privileged). Returns the new soft limit; pytest.skip when it cannot be had."""
    soft, hard = _resource.getrlimit(_resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    if hard < need:
        try:
            _resource.setrlimit(_resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} and cannot be raised")
    _resource.setrlimit(_resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def loopkit_wrapper(directory, *prefix):
    """Writes an executable script that runs `PREFIX... loopkit ARGS`; the prefix must exec
    the binary (prlimit, valgrind, env do) so the server's pid stays the wrapper's. Use it
    by pointing conftest.LOOPKIT at the returned path (monkeypatch.setattr)."""
    path = os.path.join(str(directory), "loopkit-wrapped")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(_shlex.quote(str(p)) for p in prefix)
                + " " + _shlex.quote(LOOPKIT) + ' "$@"\n')
    os.chmod(path, 0o755)
    return path


class FtpCtl:
    """A raw FTP control connection (RFC 959 replies, CRLF checked): cmd() -> (code, text)."""

    def __init__(self, srv, timeout=5, greet=True, source=None, host=None):
        self.srv = srv
        host = host or srv.host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, srv.port))
        self.buf = b""
        self.greeting = None
        if greet:
            self.greeting = self.reply()
            assert self.greeting[0] == 220, self.greeting

    def send(self, line):
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def readline(self):
        while b"\n" not in self.buf:
            try:
                b = self.sock.recv(65536)
            except ConnectionResetError:
                b = b""
            if not b:
                raise EOFError(f"control connection closed; pending {self.buf[:300]!r}")
            self.buf += b
        line, _, self.buf = self.buf.partition(b"\n")
        assert line.endswith(b"\r"), f"reply line not terminated by CRLF: {line!r}"
        assert b"\r" not in line[:-1], f"bare CR inside a reply line: {line!r}"
        return line[:-1].decode("utf-8", "replace")

    def reply(self):
        """(code, text) of the next reply; text holds all its lines joined by '\\n'."""
        line = self.readline()
        assert _re.match(r"^[1-5]\d\d[ -]", line), f"malformed reply line {line!r}"
        code, lines = int(line[:3]), [line]
        if line[3] == "-":
            while True:
                ln = self.readline()
                lines.append(ln)
                if ln.startswith(f"{code} "):
                    break
        return code, "\n".join(lines)

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def login(self, user="anonymous", pw="guest@example.com"):
        code, text = self.cmd(f"USER {user}")
        if code == 331:
            code, text = self.cmd(f"PASS {pw}")
        assert code == 230, (code, text)
        return self

    def epsv_data(self, source=None, rcvbuf=None):
        """A data connection to the port EPSV names (connected, not yet used)."""
        code, text = self.cmd("EPSV")
        assert code == 229, text
        port = int(_re.search(r"\(\|\|\|(\d+)\|\)", text).group(1))
        d = socket.socket(socket.AF_INET6 if ":" in self.sock.getpeername()[0] else socket.AF_INET)
        d.settimeout(5)
        if rcvbuf:
            d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            d.bind((source, 0))
        d.connect((self.sock.getpeername()[0], port))
        return d

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def snapshot(top):
    """{relpath: sha256 | 'dir' | 'link:TARGET'} of everything under top, dotfiles included."""
    import hashlib
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, str(top))
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def connect_early(port, rcvbuf=0):
    """A socket connecting to 127.0.0.1:port without waiting for it. On a loaded machine
    a peer can accept, send and reset before a blocking connect returns, which then
    reports the reset and not the bytes queued before it; a read reports both."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    return s


def read_until_end(s, timeout=3):
    """(bytes, how): everything s receives until the peer ends the connection, and how
    it ended: "FIN", "RST", or None when timeout passed between two reads."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return got, "FIN"
            got += b
    except ConnectionResetError:
        return got, "RST"
    except socket.timeout:
        return got, None


def read_until_closed(s, timeout=3):
    """(closed, bytes): everything s receives until the peer closes (or resets) it, or
    timeout passes between two reads (closed is then False)."""
    got, how = read_until_end(s, timeout)
    return how is not None, got


def reset_close(sock):
    """Closes a socket with a TCP RST (SO_LINGER 0): a client that vanishes."""
    import struct
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def sanitizer_build(path=LOOPKIT):
    """Is the binary built with ASan (make SAN=1)? Its memory and speed are not the
    product's: tests that measure RSS or latency skip it (the plain run measures)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


measures = pytest.mark.skipif(sanitizer_build(), reason="measures RSS or latency: not meaningful "
                              "in a sanitizer build; the plain `make test` run measures")


def connection_on_a_port(state, reuse=False, addr="127.0.0.1", mapped=False, port=0):
    """A connection from a port of its own (without SO_REUSEADDR unless reuse), left in state:
    "open" (this process holds it), "TIME-WAIT" (it closed first and the peer
    followed) or "FIN-WAIT-2" (it closed first, the peer did not: nobody holds it).
    The client's address is addr (IPv4 or IPv6), or with mapped an IPv6 socket's
    ::ffff:127.0.0.1; its port is port (0: the kernel's pick). Returns (port, what to
    close at the end)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    lst = socket.socket(fam)
    lst.bind(("127.0.0.1" if fam == socket.AF_INET else "::1", 0))
    lst.listen()
    c = socket.socket(socket.AF_INET6 if mapped else fam)
    if reuse:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if mapped:
        c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        c.bind(("::", port))
        c.connect(("::ffff:127.0.0.1", lst.getsockname()[1]))
    else:
        c.bind((addr, port))
        c.connect(lst.getsockname()[:2])
    peer, _ = lst.accept()
    port = c.getsockname()[1]
    if state != "open":
        c.close()
        if state == "TIME-WAIT":
            time.sleep(0.05)
            peer.close()
    want = {"open": "ESTAB", "TIME-WAIT": "TIME-WAIT", "FIN-WAIT-2": "FIN-WAIT-2"}[state]
    ss = lambda: subprocess.run(["ss", "-Htan", f"sport = :{port}"], capture_output=True,  # noqa: E731
                                text=True).stdout
    # FIN-WAIT-1 until the peer's (maybe delayed) ACK of the FIN
    assert wait_for(lambda: ss().split()[:1] == [want], 5), ss()
    return port, [lst, c, peer]


def fin_timeout():
    """net.ipv4.tcp_fin_timeout: how long the kernel keeps an orphan in FIN-WAIT-2."""
    with open("/proc/sys/net/ipv4/tcp_fin_timeout") as f:
        return int(f.read())


def free_port():
    """A port the kernel would give on 127.0.0.1 now (let go at once: a race, for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
