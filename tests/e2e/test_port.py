"""`loopkit port`: leased free ports, 64 concurrent callers, and the port server with
Debian's python3-portpicker as the client."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import portpicker  # Debian's python3-portpicker (scripts/deps); the port server's client
import pytest

from conftest import LOOPKIT, hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(40)


def ephemeral():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    return lo, hi


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    e.pop("PORTSERVER_ADDRESS", None)
    return e


def run(*args, env=None, timeout=10):
    return subprocess.run([LOOPKIT, "port"] + list(args), capture_output=True, text=True,
                          env=env, timeout=timeout)


def bindable(port):
    for fam, host in ((socket.AF_INET, "127.0.0.1"),):
        for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(fam, typ)
            try:
                s.bind((host, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def free_pair():
    """Two consecutive bindable ports inside the default pool."""
    for p in range(23900, 24990, 7):
        if bindable(p) and bindable(p + 1):
            return p
    pytest.skip("no two free consecutive ports in 23900-24990")


def test_one_port_outside_the_ephemeral_range(env, tmp_path):
    p = run(env=env)
    assert p.returncode == 0, p.stderr
    port = int(p.stdout)
    lo, hi = ephemeral()
    assert 15000 <= port <= 24999 and not lo <= port <= hi
    assert bindable(port)
    assert (tmp_path / "loopkit" / "ports" / str(port)).exists()
    assert oct((tmp_path / "loopkit").stat().st_mode & 0o777) == "0o700"


def test_count_json(env):
    p = run("--count", "5", "--json", env=env)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert len(set(doc["ports"])) == 5 and doc["source"] == "lease"
    assert doc["lease_secs"] == 60 and doc["host"] == "127.0.0.1"
    assert doc["ephemeral_range"] == list(ephemeral())


def test_64_concurrent_callers_get_distinct_ports(env):
    procs = [subprocess.Popen([LOOPKIT, "port"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env) for _ in range(64)]
    ports = []
    for pr in procs:
        out, err = pr.communicate(timeout=20)
        assert pr.returncode == 0, err
        ports.append(int(out))
    assert len(set(ports)) == 64, sorted(ports)


@pytest.mark.uses("port-pool-23900")
def test_lease_blocks_then_expires(env):
    # A lease of N seconds holds for at least N (it is rounded up to the next whole
    # second: a 1 s lease once expired within milliseconds when taken late in a
    # second) and at most N + 1. 3 s leaves a slow sanitizer build time to ask again.
    a = free_pair()
    pool = f"{a}-{a + 1}"
    p = run("--pool", pool, "--count", "2", "--lease", "3", env=env)
    granted = time.monotonic()
    assert p.returncode == 0, p.stderr
    assert sorted(map(int, p.stdout.split())) == [a, a + 1]
    p = run("--pool", pool, env=env)
    assert p.returncode == 1 and "pool" in p.stderr
    time.sleep(max(0.0, granted + 4.1 - time.monotonic()))
    p = run("--pool", pool, "--count", "2", env=env)  # both leases expired: both free again
    assert p.returncode == 0, p.stderr
    assert sorted(map(int, p.stdout.split())) == [a, a + 1], p.stdout


@pytest.mark.uses("port-pool-23900")
def test_port_in_use_is_skipped(env):
    a = free_pair()
    s = socket.socket()
    s.bind(("127.0.0.1", a))
    s.listen(1)
    try:
        p = run("--pool", f"{a}-{a + 1}", "--count", "1", env=env)
        assert p.returncode == 0 and int(p.stdout) == a + 1
    finally:
        s.close()


def test_pool_inside_ephemeral_range_is_an_error(env):
    lo, hi = ephemeral()
    p = run("--pool", f"{lo}-{lo + 10}", env=env)
    assert p.returncode == 1 and "ip_local_port_range" in p.stderr


@pytest.mark.parametrize("args", [["--count", "0"], ["--count", "x"], ["--lease", "-1"],
                                  ["--pool", "9-1"], ["extra"], ["--bogus"]])
def test_usage_errors_exit_2(env, args):
    assert run(*args, env=env).returncode == 2


# --- the port server -----------------------------------------------------------------

class PortServer:
    def __init__(self, env, addr, *args):
        self.proc = subprocess.Popen([LOOPKIT, "port", "--server", addr] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        r, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert r, "port server did not start"
        line = self.proc.stdout.readline().decode().strip()
        assert line == addr, (line, self.proc.stderr.read())
        self.addr = addr

    def stop(self):
        if self.proc.stderr.closed:
            return self.proc.returncode, ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, err


@pytest.fixture
def portserver(env, tmp_path):
    servers = []

    def start(*args, addr=None):
        s = PortServer(env, addr or str(tmp_path / "ps.sock"), *args)
        servers.append(s)
        return s
    yield start
    for s in servers:
        rc, err = s.stop()
        assert rc == 0, err


PICK = ("import portpicker, sys; p = portpicker.pick_unused_port(); "
        "print(p); sys.stdout.flush()")


def test_portpicker_clients_get_distinct_ports(env, portserver):
    ps = portserver()
    cenv = dict(env, PORTSERVER_ADDRESS=ps.addr)
    # Each child keeps running (reads stdin) so its ports stay leased to it.
    kids = [subprocess.Popen([sys.executable, "-c", PICK + "; sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cenv)
            for _ in range(8)]
    ports = [int(k.stdout.readline()) for k in kids]
    for k in kids:
        k.stdin.close()
        k.wait(10)
        k.stdout.close()
    lo, hi = ephemeral()
    assert len(set(ports)) == 8, ports
    assert all(15000 <= p <= 24999 and not lo <= p <= hi for p in ports), ports
    rc, err = ps.stop()
    assert rc == 0 and "8 ports handed out" in err, err
    assert not os.path.exists(ps.addr)


@pytest.mark.uses("port-pool-23900")
def test_port_returns_to_pool_when_owner_exits(env, portserver):
    a = free_pair()
    ps = portserver("--pool", f"{a}-{a + 1}", addr=f"@loopkit-test-{os.getpid()}")
    owners = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    try:
        got = [portpicker.get_port_from_port_server(ps.addr, pid=o.pid) for o in owners[:2]]
        assert sorted(got) == [a, a + 1]
        # The pool is empty: the server answers 0, which portpicker treats as failure.
        assert not portpicker.get_port_from_port_server(ps.addr, pid=owners[2].pid)
        # Dead and invalid pids are refused.
        assert not portpicker.get_port_from_port_server(ps.addr, pid=1)
        owners[0].kill()
        owners[0].wait()
        again = portpicker.get_port_from_port_server(ps.addr, pid=owners[2].pid)
        assert again == got[0]
    finally:
        for o in owners:
            o.kill()
            o.wait()


def test_loopkit_port_asks_the_server(env, portserver):
    ps = portserver()
    p = run("--json", "--count", "2", env=dict(env, PORTSERVER_ADDRESS=ps.addr))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["source"] == "portserver" and len(set(doc["ports"])) == 2
    # No server there: it falls back to its own leases.
    p = run("--json", env=dict(env, PORTSERVER_ADDRESS="@loopkit-nobody-here"))
    assert p.returncode == 0 and json.loads(p.stdout)["source"] == "lease"
