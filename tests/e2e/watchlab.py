"""Helpers for the `loopkit watch` tests: a running watcher, its page and metrics, and real
targets to bring up and down (python http.server, loopkit serve, a TCP listener, vsftpd,
a UDP responder)."""
import http.client
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import LOOPKIT, stop_child

PY = "/usr/bin/python3"


def lease_ports(n):
    """n free loopback ports from `loopkit port` (never handed to two callers)."""
    out = subprocess.run([LOOPKIT, "port", "--count", str(n), "--lease", "600"], capture_output=True,
                         text=True, timeout=10, check=True).stdout
    ports = [int(x) for x in out.split()]
    assert len(ports) == n, out
    return ports


def run(*args, timeout=60, env=None, **kw):
    """`loopkit watch ARGS` to its end: CompletedProcess (text)."""
    return subprocess.run([LOOPKIT, "watch", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(port, timeout=10, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the service on {port} exited with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}; checks the format's
    rules on the way (HELP/TYPE before samples, the last line ends in a newline)."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    out, typed = {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no TYPE line before its samples"
        lab = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        out[(name, frozenset(lab.items()))] = float(value)
    return out


def metric(ms, name, **labels):
    """The value of one series, or None."""
    want = set(labels.items())
    for (n, lab), v in ms.items():
        if n == name and want <= set(lab):
            return v
    return None


class Watcher:
    """A running `loopkit watch --port 0`: the first stdout line is the page's URL; the
    rest (state changes) is collected by a thread. stderr goes to a file."""

    def __init__(self, *args, db=None, env=None, preexec_fn=None, json_lines=False, prefix=()):
        self.errf = tempfile.NamedTemporaryFile(prefix="lk-watch-err-", delete=False)
        cmd = [*map(str, prefix), LOOPKIT, "watch", "--port", "0", *map(str, args)]
        if db is not None:
            cmd += ["--db", str(db)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf, env=env,
                                     preexec_fn=preexec_fn, bufsize=0)
        self.pid = self.proc.pid
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        first = self.proc.stdout.readline().decode() if r else ""
        if json_lines and first:
            first = json.loads(first)["url"] + "\n"
        assert first.startswith("http://127.0.0.1:"), f"no URL first: {first!r}; stderr: {self.stderr()}"
        self.url = first.strip()
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        self.lines = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    @classmethod
    def attach(cls, port):
        """The HTTP helpers (get, status, rows, metrics) for a watcher started otherwise."""
        w = cls.__new__(cls)
        w.port = port
        return w

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.decode(errors="replace").rstrip("\n")))

    def stderr(self):
        with open(self.errf.name, "rb") as f:
            return f.read().decode(errors="replace")

    def get(self, path, headers=None, method="GET", timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def status(self):
        st, _, body = self.get("/api/status")
        assert st == 200, body
        return json.loads(body)

    def rows(self):
        return {t["name"]: t for t in self.status()["targets"]}

    def metrics(self):
        st, h, body = self.get("/metrics")
        assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4"), (st, h)
        return parse_metrics(body.decode())

    def wait_state(self, name, state, timeout=10):
        """Waits until target name is in state; returns the row."""
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.rows().get(name)
            if row and row["state"] == state:
                return row
            time.sleep(0.05)
        raise AssertionError(f"{name} not {state} within {timeout} s: {row}; stderr: {self.stderr()[-2000:]}")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        stop_child(self.proc, sig, timeout)
        self._t.join(5)
        return self.proc.returncode

    def close(self):
        self.stop(signal.SIGKILL)
        os.unlink(self.errf.name)


class Services:
    """Real targets, each started and stopped by pid: python http.server, loopkit serve,
    a TCP listener of the test's own, vsftpd (as root), a UDP responder."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.procs = {}
        self.socks = {}

    def _spawn(self, name, cmd, port):
        log = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs[name] = p
        wait_listening(port, proc=p)
        return p

    def python_http(self, port, name="pyhttp", root=None):
        d = root or os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write("<p>hello from python</p>\n")
        with open(os.path.join(d, "health.json"), "w") as f:
            json.dump({"status": "ok", "checks": [{"name": "db", "up": True}]}, f)
        return self._spawn(name, [PY, "-m", "http.server", str(port), "-b", "127.0.0.1", "-d", d], port)

    def loopkit_serve(self, port, name="serve", *extra):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write("<p>hello from loopkit</p>\n")
        return self._spawn(name, [LOOPKIT, "serve", d, "--port", str(port), "--threads", "1", *extra], port)

    def vsftpd(self, port, name="vsftpd"):
        d = os.path.join(self.tmp, name)
        for sub in ("ftp", "empty"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(os.path.join(d, sub), 0o755)
        conf = os.path.join(d, "vsftpd.conf")
        with open(conf, "w") as f:
            f.write(f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={d}/ftp
no_anon_password=YES
background=NO
seccomp_sandbox=NO
secure_chroot_dir={d}/empty
xferlog_enable=NO
""")
        return self._spawn(name, ["vsftpd", conf], port)

    def tcp_listener(self, port, name="tcp", backlog=16, accept=True):
        """A listener of our own; with accept=False it never accepts (and its backlog fills)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(backlog)
        self.socks[name] = s
        held = []
        if accept:
            def loop():
                while True:
                    try:
                        c, _ = s.accept()
                    except OSError:
                        return
                    held.append(c)  # accepted and never answered
            threading.Thread(target=loop, daemon=True).start()
        self.socks[name + ".held"] = held
        return s

    def udp_responder(self, port, name="udp", answer=b"pong"):
        """Answers every datagram with `answer` (None: never answers)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        self.socks[name] = s

        def loop():
            while True:
                try:
                    data, peer = s.recvfrom(65536)
                except OSError:
                    return
                if peer is None:  # closed under us
                    return
                if answer is not None:
                    s.sendto(answer + b" " + data, peer)
        threading.Thread(target=loop, daemon=True).start()
        return s

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is not None:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            return
        s = self.socks.pop(name, None)
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in self.socks.pop(name + ".held", []):
            c.close()

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        for name in [n for n in list(self.socks) if not n.endswith(".held")]:
            self.stop(name)


def services_fixture():
    """A fixture of Services for one test, every one stopped at its end. Use in a module
    as `svc = services_fixture()`."""

    @pytest.fixture
    def svc(tmp_path):
        s = Services(tmp_path)
        yield s
        s.close()

    return svc


def db_rows(path, sql, args=()):
    """Reads the history with Python's sqlite3 (another reader, as people would)."""
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()
