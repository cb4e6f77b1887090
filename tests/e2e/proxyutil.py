"""Helpers for the proxy tests: a running `loopkit proxy`, its API, and upstream peers."""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LOOPKIT, StderrFile, sanitizer_build, stop_child

# LOOPKIT_PROXY: another build for the proxy alone (a sanitizer build behind a plain upstream)
PROXY_BIN = os.environ.get("LOOPKIT_PROXY") or LOOPKIT
_skip_san = pytest.mark.skipif(sanitizer_build(PROXY_BIN), reason="measures RSS or latency: not meaningful "
                               "in a sanitizer build; the plain `make test` run measures")


def measures(fn):
    """A test that measures RSS or time: it runs alone (conftest's `alone`: nothing
    beside it under xdist) and skips a sanitizer build of the proxy, like
    conftest.measures."""
    return pytest.mark.alone(_skip_san(fn))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NPM_DIR = os.path.join(ROOT, "build", "npm")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    """(sockets, pipe ends, others) held by pid."""
    socks = pipes = other = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:"):
            socks += 1
        elif t.startswith("pipe:"):
            pipes += 1
        else:
            other += 1
    return socks, pipes, other


PIPE_POOL = 64  # PROXY_PIPE_POOL: idle pipes kept for reuse


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Proxy:
    """A running `loopkit proxy`: stdout's first lines name the proxies and the API."""

    def __init__(self, *args, api=True, nofile=None, expect=1, prefix=(), binary=PROXY_BIN):
        self._err = StderrFile("loopkit-proxy-err-")
        cmd = [*prefix, binary, "proxy", *args]
        if api and "--api" not in args:
            cmd += ["--api", "127.0.0.1:0"]
        pre = None
        if nofile:
            import resource

            def pre():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err.fileno(), preexec_fn=pre,
                                     bufsize=0)
        self.pid = self.proc.pid
        self.proxies = {}
        self.api_addr = None
        self.lines = []
        self.stopped = False
        self.json = "--json" in args
        want = 1 if self.json else expect + (1 if api else 0)
        deadline = time.monotonic() + 10
        while len(self.lines) < want:
            r, _, _ = select.select([self.proc.stdout], [], [], max(0, deadline - time.monotonic()))
            if not r:
                self.proc.kill()
                raise AssertionError("loopkit proxy did not start: " + self.stderr())
            line = self.proc.stdout.readline().decode()
            if not line:
                raise AssertionError("loopkit proxy exited: " + self.stderr())
            self.lines.append(line)
            if self.json:  # one JSON line: the proxies and the API
                self.start = json.loads(line)
                self.proxies = {p["name"]: p["listen"] for p in self.start["proxies"]}
                if self.start["api"]:
                    self.api_addr = self.start["api"][len("http://"):].rstrip("/")
                continue
            name, rest = line.split(None, 1)
            if name == "api":
                self.api_addr = rest.strip()[len("http://"):].rstrip("/")
            else:
                self.proxies[name] = rest.split(" -> ")[0].strip()

    def port(self, name="proxy"):
        return int(self.proxies[name].rsplit(":", 1)[1])

    def stderr(self):
        return self._err.text()

    def api(self, method, path, body=None, raw=None, headers=None, timeout=10):
        host, port = self.api_addr.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        text = r.read()
        c.close()
        try:
            return r.status, (json.loads(text) if text else None)
        except ValueError:
            return r.status, text.decode(errors="replace")

    def connect(self, name="proxy", timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port(name)), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.stopped = True
            self.rest = stop_child(self.proc, sig, timeout, communicate=True).decode(errors="replace")
        self._err.close()
        return self.proc.returncode


class Upstream:
    """A threaded TCP server on 127.0.0.1:0 running handler(conn) per connection."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.handler = handler
        self.conns = []
        self.stopped = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.sock.close()


def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            return
        c.sendall(b)


def source(nbytes, chunk=65536):
    """A handler that sends nbytes of a known pattern, then closes."""
    pat = bytes(range(256)) * (chunk // 256)

    def h(c):
        left = nbytes
        while left:
            k = min(left, len(pat))
            c.sendall(pat[:k])
            left -= k
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
    return h


def recv_all(s, limit=1 << 30):
    chunks, n = [], 0
    while n < limit:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


@pytest.fixture
def proxies():
    """proxies(*args, **kw) -> Proxy; each is stopped at teardown, and must have lived."""
    made = []

    def start(*args, **kw):
        p = Proxy(*args, **kw)
        made.append(p)
        return p
    yield start
    for p in made:
        alive = p.stopped or p.proc.poll() is None
        log = p.stderr()[-3000:]
        rc = p.stop()
        assert alive, "loopkit proxy died during the test:\n" + log
        assert rc == 0, f"loopkit proxy exited {rc}:\n" + log


@pytest.fixture
def echo_up():
    u = Upstream(echo)
    yield u
    u.close()
