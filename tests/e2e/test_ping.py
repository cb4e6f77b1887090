"""`loopkit ping`: its own responders, real targets (Python sockets), closed ports, ICMP
with and without privileges, Ctrl-C, statistics."""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LOOPKIT, hard_timeout_fixture, need_tool

_hard_timeout = hard_timeout_fixture(30)


def run(*args, timeout=15, prefix=()):
    return subprocess.run(list(prefix) + [LOOPKIT, "ping"] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def check_summary(doc, n):
    s = doc["summary"]
    assert s["sent"] == n and s["received"] == n and s["loss_pct"] == 0, s
    ms = sorted(p["ms"] for p in doc["probes"])
    assert len(ms) == n and all(p["ok"] and p["error"] is None for p in doc["probes"])
    assert [p["seq"] for p in doc["probes"]] == list(range(1, n + 1))
    assert abs(s["min_ms"] - ms[0]) < 0.002 and abs(s["max_ms"] - ms[-1]) < 0.002
    assert s["min_ms"] <= s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["min_ms"] <= s["avg_ms"] <= s["max_ms"]
    assert abs(s["avg_ms"] - sum(ms) / n) < 0.002
    mean = sum(ms) / n
    mdev = (sum(x * x for x in ms) / n - mean * mean) ** 0.5
    assert abs(s["mdev_ms"] - mdev) < 0.01
    # nearest rank
    assert abs(s["p50_ms"] - ms[(n + 1) // 2 - 1]) < 0.002
    assert s["max_ms"] < 1000


@pytest.mark.parametrize("mode", ["--tcp", "--udp"])
def test_own_responder_statistics(mode):
    p = run(mode, "-c", "20", "-i", "0.005", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["mode"] == mode[2:] and doc["method"] == "own responder"
    assert doc["target"].startswith("127.0.0.1:")
    check_summary(doc, 20)


@pytest.mark.parametrize("mode", ["--tcp", "--udp"])
@pytest.mark.parametrize("size", ["0", "1", "65507"])
def test_payload_sizes(mode, size):
    p = run(mode, "-c", "2", "-i", "0.005", "-s", size, "--json")
    assert p.returncode == 0, p.stderr
    check_summary(json.loads(p.stdout), 2)


def test_human_output_like_ping():
    p = run("-c", "3", "-i", "0.01", "-s", "100")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("PING 127.0.0.1:") and "100 data bytes" in out
    assert out.count("100 bytes from 127.0.0.1:") == 3
    assert "3 sent, 3 received, 0% loss" in out
    assert "rtt min/avg/max/mdev = " in out and "rtt p50/p90/p99 = " in out


def test_tcp_target_measures_the_handshake():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    try:
        p = run("-c", "3", "-i", "0.01", "--json", "127.0.0.1:%d" % lst.getsockname()[1])
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["method"] == "target" and doc["size"] == 0
        check_summary(doc, 3)
    finally:
        lst.close()


def test_udp_target_with_a_python_echo():
    u = socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET,
                      socket.SOCK_DGRAM)
    try:
        u.bind(("::1", 0))
        host = "[::1]"
    except OSError:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        host = "127.0.0.1"
    stop = threading.Event()

    def echo():
        u.settimeout(0.1)
        while not stop.is_set():
            try:
                data, addr = u.recvfrom(65536)
                u.sendto(data, addr)
            except socket.timeout:
                pass
    t = threading.Thread(target=echo)
    t.start()
    try:
        p = run("--udp", "-c", "3", "-i", "0.01", "--json", f"{host}:{u.getsockname()[1]}")
        assert p.returncode == 0, p.stderr
        check_summary(json.loads(p.stdout), 3)
    finally:
        stop.set()
        t.join()
        u.close()


def closed_port(typ):
    s = socket.socket(socket.AF_INET, typ)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("mode,typ,why", [("--tcp", socket.SOCK_STREAM, "connection refused"),
                                          ("--udp", socket.SOCK_DGRAM, "port unreachable")])
def test_closed_port_is_loss_not_a_crash(mode, typ, why):
    port = closed_port(typ)
    p = run(mode, "-c", "3", "-i", "0.01", "--json", f"127.0.0.1:{port}")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["summary"]["sent"] == 3 and doc["summary"]["received"] == 0
    assert doc["summary"]["loss_pct"] == 100 and doc["summary"]["min_ms"] is None
    assert all(pr["error"] == why for pr in doc["probes"]), doc["probes"]
    h = run(mode, "-c", "2", "-i", "0.01", f"127.0.0.1:{port}")
    assert h.returncode == 1 and "100% loss" in h.stdout and why in h.stdout


def has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


CAP_NET_RAW = 13


def icmp_method():
    """What docs/ping.md says this process gets: a raw socket with CAP_NET_RAW, else a
    datagram socket when its group is in net.ipv4.ping_group_range, else None (SKIP)."""
    with open("/proc/self/status") as f:
        cap_eff = int([ln for ln in f if ln.startswith("CapEff:")][0].split()[1], 16)
    if cap_eff >> CAP_NET_RAW & 1:
        return "raw socket"
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        lo, hi = map(int, f.read().split())
    return "datagram socket" if lo <= os.getegid() <= hi else None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_icmp_works_or_skips_naming_the_sysctl(host):
    if host == "::1" and not has_ipv6():
        pytest.skip("no IPv6 here")
    p = run("--icmp", "-c", "2", "-i", "0.01", "--json", host)
    method = icmp_method()
    if method is None:
        assert p.returncode == 1, p.stderr
        assert "SKIP" in p.stderr and "net.ipv4.ping_group_range" in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["method"] == method, doc
        check_summary(doc, 2)


def test_icmp_unprivileged_user():
    """As nobody: a datagram ICMP socket when ping_group_range lets gid 65534 in, else
    a SKIP that names the sysctl. Only runnable as root (to become nobody)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("needs root and setpriv to run as another user")
    lo, hi = map(int, open("/proc/sys/net/ipv4/ping_group_range").read().split())
    p = run("--icmp", "-c", "2", "-i", "0.01", "--json",
            prefix=(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"))
    if lo <= 65534 <= hi:
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["method"] == "datagram socket"
    else:
        assert p.returncode == 1
        assert "SKIP" in p.stderr and "net.ipv4.ping_group_range" in p.stderr, p.stderr
        doc = json.loads(p.stdout)  # --json still gives a script a document
        assert doc["mode"] == "icmp" and doc["skipped"] is True, doc
        assert "net.ipv4.ping_group_range" in doc["error"], doc


def test_ctrl_c_prints_the_summary():
    proc = subprocess.Popen([LOOPKIT, "ping", "-c", "1000", "-i", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while len(lines) < 3:
            r, _, _ = select.select([proc.stdout], [], [], 5)
            assert r, "no probe lines"
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "ping statistics" in out and "0% loss" in out and "rtt p50/p90/p99" in out


@pytest.mark.parametrize("args", [["-c", "0"], ["-c", "x"], ["-i", "0"], ["-s", "70000"],
                                  ["--tcp", "--udp"], ["127.0.0.1"], ["a:b:c"], ["--icmp", "1.2.3.4:5"],
                                  ["1:2", "3:4"], ["--bogus"], ["-W", "0"], ["--timeout", "61s"],
                                  ["70000"], ["0"]])
def test_usage_errors_exit_2(args):
    assert run(*args).returncode == 2


def test_bare_port_means_127_0_0_1():
    """`loopkit ping 8080` as tcping users type it: 127.0.0.1:PORT, over TCP and UDP."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    port = lst.getsockname()[1]
    try:
        p = run(str(port), "-c", "2", "-i", "10ms", "--json")
    finally:
        lst.close()
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["mode"] == "tcp" and doc["target"] == f"127.0.0.1:{port}", doc
    assert doc["summary"]["received"] == 2, doc
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    uport = u.getsockname()[1]
    try:
        p = run("-u", str(uport), "-c", "1", "-W", "50ms", "--json")
        u.settimeout(1)
        got = u.recv(100)  # the probe reached the test's own socket
    finally:
        u.close()
    assert json.loads(p.stdout)["target"] == f"127.0.0.1:{uport}", p.stdout
    assert len(got) == 56, got


def test_timeout_w_bounds_each_probe():
    """-W/--timeout (ping's -W): a silent UDP target loses each probe after it, not 1 s."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))  # bound, never answers
    port = u.getsockname()[1]
    try:
        t0 = time.monotonic()
        p = run("-u", f"127.0.0.1:{port}", "-c", "3", "-i", "10ms", "-W", "100ms", "--json")
        took = time.monotonic() - t0
        h = run("-u", f"127.0.0.1:{port}", "-c", "1", "--timeout", "0.2")
    finally:
        u.close()
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert [x["error"] for x in doc["probes"]] == ["timeout"] * 3, doc["probes"]
    assert doc["summary"]["time_ms"] >= 250 and took < 2.5, (took, doc["summary"])  # 1 s each: 3 s
    assert h.returncode == 1 and "seq=1 timeout" in h.stdout, h.stdout


def test_remote_target_refused_without_allow_remote():
    """Like scan, bench and proxy: a target beyond loopback needs --allow-remote, with their
    one message. Run in a network namespace of the test's own with only lo, so that even
    a binary that did not refuse could not reach anything off this machine."""
    unshare = need_tool("unshare", "util-linux")
    pre = None
    for cand in ([unshare, "-n"], [unshare, "-rn"]):
        if subprocess.run(cand + ["true"], capture_output=True, timeout=10).returncode == 0:
            pre = cand
            break
    if pre is None:
        pytest.skip("cannot create a network namespace here (needs root or user namespaces)")
    scan = subprocess.run(pre + [LOOPKIT, "scan", "10.1.2.3"], capture_output=True, text=True,
                          timeout=15)
    msg = scan.stderr.split("loopkit scan: ", 1)[1].replace("10.1.2.3", "TARGET")
    for args, shown in ((["10.1.2.3:80"], "10.1.2.3:80"), (["--icmp", "10.1.2.3"], "10.1.2.3"),
                        (["-u", "[2001:db8::1]:53"], "[2001:db8::1]:53")):
        p = run(*args, "-c", "1", prefix=pre)
        assert p.returncode == 2 and p.stdout == "", (args, p.stdout, p.stderr)
        assert p.stderr == "loopkit ping: " + msg.replace("TARGET", shown), (args, p.stderr)
    # With --allow-remote the probe is made (and fails here: no route out of this namespace).
    p = run("10.1.2.3:80", "-c", "1", "-W", "100ms", "--allow-remote", prefix=pre)
    assert p.returncode == 1 and "no answer from 10.1.2.3:80" in p.stdout, (p.stdout, p.stderr)


def test_quiet_prints_the_head_and_the_summary_only():
    """ping's -q: 200 probes, no line each."""
    p = run("-q", "-c", "200", "-i", "0.001")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("PING ") and not [ln for ln in lines if "seq=" in ln], p.stdout
    assert "200 sent, 200 received, 0% loss" in p.stdout, p.stdout
