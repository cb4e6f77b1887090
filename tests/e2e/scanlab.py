"""A lab of real local services for the scan and audit tests (issue 14).

Each service is a real program from Debian, started on a free loopback port (leased with
`loopkit port`, never its default port: the machine may run other things) and stopped by
pid (a process group the lab created, for Chromium's helpers) when the lab closes:

  redis      redis-server without a password
  memcached  memcached (no authentication exists by default)
  pyhttp     python3 -m http.server serving a directory that looks like a home directory
             (it accepts any Host: DNS-rebinding-reachable)
  nginx      nginx with a Host check (server_name + a default server that returns 444)
  nginxcors  the same nginx, a second port whose answers reflect any Origin with
             credentials (a common misconfiguration, written as nginx users write it)
  vsftpd     vsftpd with anonymous write enabled, in a config of the lab's own (root only)
  wildcard   a python3 socket listening on 0.0.0.0 that never says a word
  loopkit    loopkit serve with its defaults (must audit clean)
  lkcors     loopkit serve --cors (read-only: answers private-network preflights for
             any origin, on purpose, and is reported for it)
  devtools   headless Chromium with --remote-debugging-port

and, for their own test, jupyter (jupyter-notebook with an empty token) and jupytertoken
(the same with a token).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import LOOPKIT

NAMES = ["redis", "memcached", "pyhttp", "nginx", "nginxcors", "vsftpd", "wildcard", "loopkit",
         "lkcors", "devtools"]
START_TIMEOUT = 20  # seconds for every service to listen (Chromium is the slow one)


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def lease_ports(n):
    out = subprocess.run([LOOPKIT, "port", "--count", str(n), "--lease", "900"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    ports = [int(x) for x in out.split()]
    assert len(ports) == n, out
    return ports


def listening(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


NGINX_CONF = """
daemon off;
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # The Host check: names we serve get the site, any other Host the default server,
    # which closes the connection without an answer (444).
    server {{ listen 127.0.0.1:{p1} default_server; return 444; }}
    server {{ listen 127.0.0.1:{p1}; server_name 127.0.0.1 localhost; root {d}/www; }}
    server {{ listen 127.0.0.1:{p2} default_server; return 444; }}
    server {{
        listen 127.0.0.1:{p2};
        server_name 127.0.0.1 localhost;
        root {d}/www;
        add_header Access-Control-Allow-Origin $http_origin always;
        add_header Access-Control-Allow-Credentials true always;
    }}
}}
"""

VSFTPD_CONF = """listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_root={d}/ftp
no_anon_password=YES
background=NO
seccomp_sandbox=NO
secure_chroot_dir={d}/empty
xferlog_enable=NO
"""

WILDCARD = """
import selectors, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_READ)
while True:  # accepts and reads, never says a word; closes when the peer does
    for key, _ in sel.select():
        if key.fileobj is s:
            c, _ = s.accept()
            sel.register(c, selectors.EVENT_READ)
        elif not key.fileobj.recv(4096):
            sel.unregister(key.fileobj)
            key.fileobj.close()
"""


class Lab:
    """Starts the named services; lab.ports[name] is each one's port, lab.pids[name] the
    pid that holds it. close() stops everything by pid."""

    def __init__(self, names=NAMES):
        self.dir = tempfile.mkdtemp(prefix="lk-scanlab-")
        self.procs = {}
        self.pids = {}
        self.logs = {}
        self.ports = dict(zip(names, lease_ports(len(names))))
        try:
            for name in names:
                getattr(self, "_start_" + name)(self.ports[name])
            deadline = time.monotonic() + START_TIMEOUT
            for name in names:
                while not listening(self.ports[name]):
                    if self.procs[name].poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"{name} did not listen on {self.ports[name]}: "
                                             + self.log(name))
                    time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name, cmd, **kw):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.logs[name] = log.name
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        log.close()
        self.procs[name] = p
        self.pids[name] = p.pid
        return p

    def log(self, name):
        try:
            with open(self.logs[name], "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except (KeyError, OSError):
            return ""

    def _start_redis(self, port):
        d = os.path.join(self.dir, "redis")
        os.mkdir(d)
        self._spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", d,
                              "--protected-mode", "no", "--daemonize", "no"])

    def _start_memcached(self, port):
        cmd = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
        if os.getuid() == 0:
            cmd += ["-u", "nobody"]
        self._spawn("memcached", cmd)

    def _start_pyhttp(self, port):
        home = os.path.join(self.dir, "home")
        os.makedirs(os.path.join(home, ".ssh"))
        for f in (".bashrc", ".profile", ".ssh/known_hosts", "notes.txt"):
            with open(os.path.join(home, f), "w") as fh:
                fh.write("x\n")
        self._spawn("pyhttp", ["/usr/bin/python3", "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", home])

    def _start_nginx(self, port):
        d = os.path.join(self.dir, "nginx")
        os.makedirs(os.path.join(d, "www"))
        with open(os.path.join(d, "www", "index.html"), "w") as f:
            f.write("<p>hello</p>\n")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, p1=port, p2=self.ports["nginxcors"]))
        self._spawn("nginx", ["nginx", "-c", conf, "-p", d])

    def _start_nginxcors(self, port):
        self.procs["nginxcors"] = self.procs["nginx"]  # one nginx holds both ports
        self.pids["nginxcors"] = self.pids["nginx"]
        self.logs["nginxcors"] = self.logs["nginx"]

    def _start_vsftpd(self, port):
        d = os.path.join(self.dir, "vsftpd")
        os.makedirs(os.path.join(d, "ftp", "incoming"))
        os.makedirs(os.path.join(d, "empty"))
        os.chmod(os.path.join(d, "ftp", "incoming"), 0o777)
        for sub in ("", "ftp", "empty"):
            os.chmod(os.path.join(d, sub), 0o755)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(d, "ftp", "readme.txt"), "w") as f:
            f.write("hello\n")
        conf = os.path.join(d, "vsftpd.conf")
        with open(conf, "w") as f:
            f.write(VSFTPD_CONF.format(port=port, d=d))
        self._spawn("vsftpd", ["vsftpd", conf])

    def _start_wildcard(self, port):
        self._spawn("wildcard", ["/usr/bin/python3", "-c", WILDCARD, str(port)])

    def _start_loopkit(self, port, extra=()):
        d = os.path.join(self.dir, "site")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write("<p>site</p>\n")
        self._spawn("loopkit" if not extra else "lkcors",
                    [LOOPKIT, "serve", d, "--port", str(port), "--threads", "1", *extra])

    def _start_lkcors(self, port):
        self._start_loopkit(port, ("--cors",))

    def _start_devtools(self, port):
        exe = chromium_binary()
        assert exe, "chromium is missing: scripts/deps installs it"
        self._spawn("devtools", [exe, "--headless", "--no-sandbox", "--disable-gpu",
                                 "--no-first-run", "--disable-background-networking",
                                 "--disable-component-update", "--disable-sync",
                                 "--disable-crash-reporter", "--disable-breakpad",
                                 "--disable-extensions", "--mute-audio",
                                 f"--remote-debugging-port={port}",
                                 "--remote-debugging-address=127.0.0.1",
                                 f"--user-data-dir={os.path.join(self.dir, 'chromium')}",
                                 "about:blank"])

    def _start_jupyter(self, port, token=""):
        d = os.path.join(self.dir, "notebooks" + ("-token" if token else ""))
        os.makedirs(d)
        name = "jupytertoken" if token else "jupyter"
        self._spawn(name, ["jupyter-notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                           f"--NotebookApp.token={token}", "--NotebookApp.password=",
                           f"--notebook-dir={d}", "--allow-root"],
                    env=dict(os.environ, HOME=d, JUPYTER_RUNTIME_DIR=os.path.join(d, ".rt")))

    def _start_jupytertoken(self, port):
        self._start_jupyter(port, token="lk-secret-token")

    def port_list(self):
        return ",".join(str(p) for p in sorted(set(self.ports.values())))

    def close(self):
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)  # the group the lab created for it
                except ProcessLookupError:
                    pass
        for name, p in list(self.procs.items()):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def loopkit(*args, timeout=120):
    """Runs the binary; returns CompletedProcess (text)."""
    return subprocess.run([LOOPKIT, *args], capture_output=True, text=True, timeout=timeout)


def lab_fixture():
    """A module-scoped fixture with the whole lab (vsftpd needs root; CI runs as root)."""

    @pytest.fixture(scope="module")
    def lab():
        if os.getuid() != 0:
            pytest.skip("the lab's vsftpd needs root (CI runs as root)")
        lab = Lab()
        yield lab
        lab.close()

    return lab
