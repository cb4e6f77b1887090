"""`loopkit ports` and `loopkit who` against ss(8) for sockets this test opens itself."""
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import LOOPKIT, connection_on_a_port, fin_timeout, free_port, hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(30)

SS = shutil.which("ss") or "/usr/bin/ss"


def run(*args, timeout=10, env=None):
    return subprocess.run([LOOPKIT] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class Sockets:
    """The test's own sockets: TCP and UDP, v4 and v6, loopback and wildcard, listening
    and connected. `expected` maps a canonical key to whether it must be EXPOSED."""

    def __init__(self):
        self.socks = []
        self.expected = {}
        v6 = has_ipv6()
        tcp = [("127.0.0.1", socket.AF_INET, None), ("0.0.0.0", socket.AF_INET, None)]
        if v6:
            tcp += [("::1", socket.AF_INET6, 1), ("::", socket.AF_INET6, 1),
                    ("::", socket.AF_INET6, 0)]
        for host, fam, v6only in tcp:
            s = self._sock(fam, socket.SOCK_STREAM, v6only)
            s.bind((host, 0))
            s.listen(8)
            self._expect("tcp", s, None, "LISTEN", host not in ("127.0.0.1", "::1"),
                         v6only)
        for host, fam, v6only in tcp[:1] + (tcp[2:3] if v6 else []):
            lst = self._sock(fam, socket.SOCK_STREAM, v6only)
            lst.bind((host, 0))
            lst.listen(8)
            self._expect("tcp", lst, None, "LISTEN", False, v6only)
            c = self._sock(fam, socket.SOCK_STREAM, None)
            c.connect(lst.getsockname()[:2])
            a, _ = lst.accept()
            self.socks.append(a)
            self._expect("tcp", c, c.getpeername(), "ESTAB", False, None)
            self._expect("tcp", a, a.getpeername(), "ESTAB", False, None)
        udp = [("127.0.0.1", socket.AF_INET, None), ("0.0.0.0", socket.AF_INET, None)]
        if v6:
            udp += [("::1", socket.AF_INET6, 1), ("::", socket.AF_INET6, 1)]
        for host, fam, v6only in udp:
            s = self._sock(fam, socket.SOCK_DGRAM, v6only)
            s.bind((host, 0))
            self._expect("udp", s, None, "UNCONN", host not in ("127.0.0.1", "::1"), v6only)
        peer = self._sock(socket.AF_INET, socket.SOCK_DGRAM, None)
        peer.bind(("127.0.0.1", 0))
        self._expect("udp", peer, None, "UNCONN", False, None)
        u = self._sock(socket.AF_INET, socket.SOCK_DGRAM, None)
        u.connect(peer.getsockname())
        self._expect("udp", u, u.getpeername(), "ESTAB", False, None)

    def _sock(self, fam, typ, v6only):
        s = socket.socket(fam, typ)
        if v6only is not None:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        self.socks.append(s)
        return s

    def _expect(self, proto, s, peer, state, exposed, v6only):
        host, port = s.getsockname()[:2]
        if host == "::" and not v6only:
            host = "*"
        remote = f"{peer[0]}:{peer[1]}" if peer else "*"
        self.expected[(proto, host, port, remote, state)] = exposed

    @property
    def ports(self):
        return {k[2] for k in self.expected}

    def close(self):
        for s in self.socks:
            s.close()


@pytest.fixture
def socks():
    s = Sockets()
    yield s
    s.close()


def ours_from_json(doc, ports, pid=None):
    """The rows on the test's ports, keyed like Sockets.expected: {key: (exposed, owner
    pids)}. With pid, only rows that process owns (other tests may hold the same port
    number on another address or protocol at the same moment)."""
    out = {}
    for r in doc["sockets"]:
        if r["local_port"] not in ports:
            continue
        if pid is not None and pid not in [o["pid"] for o in r["owners"]]:
            continue
        host = r["local_addr"]
        if r["family"] == "ipv6" and host == "::" and r.get("v6only") is False:
            host = "*"
        remote = "*" if r["remote_port"] == 0 else f"{r['remote_addr']}:{r['remote_port']}"
        key = (r["proto"], host, r["local_port"], remote, r["state"])
        out[key] = (r["exposed"], sorted(o["pid"] for o in r["owners"]))
    return out


def norm_addr(a):
    host, _, port = a.rpartition(":")
    host = host.strip("[]").split("%")[0]
    return host, port


def ours_from_ss(ports, pid):
    """The same from ss -tanup, for the sockets process pid owns."""
    out = subprocess.run([SS, "-tanupH"], capture_output=True, text=True, timeout=10).stdout
    got = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        proto, state = f[0], f[1]
        lhost, lport = norm_addr(f[4])
        if not lport.isdigit() or int(lport) not in ports:
            continue
        rhost, rport = norm_addr(f[5])
        remote = "*" if rport == "*" else f"{rhost}:{rport}"
        pids = sorted(int(p) for p in re.findall(r"pid=(\d+)", line))
        if pid in pids:
            got[(proto, lhost, int(lport), remote, state)] = pids
    return got


def test_ports_all_json_matches_ss(socks):
    p = run("ports", "--all", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    me = os.getpid()
    ours = ours_from_json(doc, socks.ports, me)
    theirs = ours_from_ss(socks.ports, me)
    # Every socket the test opened, with the same state and owner as ss sees it.
    for key, exposed in socks.expected.items():
        assert key in ours, f"loopkit misses {key}; has {sorted(ours)}"
        assert key in theirs, f"ss misses {key}; has {sorted(theirs)}"
        assert ours[key][0] == exposed, f"EXPOSED wrong for {key}"
        assert ours[key][1] == theirs[key] == [me], (key, ours[key], theirs[key])
    assert set(ours) == set(theirs), (set(ours) ^ set(theirs))
    assert doc["counts"]["tcp"]["LISTEN"] >= 4
    assert doc["counts"]["tcp"]["ESTAB"] >= 2


def test_ports_default_lists_listeners_only(socks):
    p = run("ports", "--json")
    assert p.returncode == 0, p.stderr
    me = os.getpid()
    ours = ours_from_json(json.loads(p.stdout), socks.ports, me)
    want = {k for k in socks.expected if k[4] in ("LISTEN", "UNCONN")}
    assert set(ours) == want
    for proto in ("udp", "tcp"):
        p = run("ports", "--" + proto, "--json")
        ours = ours_from_json(json.loads(p.stdout), socks.ports, me)
        assert set(ours) == {k for k in want if k[0] == proto}, (proto, sorted(ours))


def test_ports_human_marks_exposed(socks):
    p = run("ports", env=dict(os.environ, NO_COLOR="1"))
    assert p.returncode == 0, p.stderr
    assert "\033[" not in p.stdout
    # The test's listeners, as (proto, address, port): as ss and docs/ports.md, a
    # dual-stack wildcard shows as "*", a v6-only one as "[::]".
    want = {(k[0], k[1], k[2]): exposed
            for k, exposed in socks.expected.items() if k[4] in ("LISTEN", "UNCONN")}
    seen = set()
    for line in p.stdout.splitlines():
        m = re.match(r"(tcp|udp)6?\s+(\S+)", line)
        if not m:
            continue
        host, port = norm_addr(m.group(2))
        key = (m.group(1), host, int(port))
        if key not in want:
            continue
        seen.add(key)
        assert ("EXPOSED" in line) == want[key], line
        assert re.search(rf"\s{os.getpid()}\s", line), line
    assert seen == set(want), (sorted(set(want) - seen), p.stdout)


def connected_pair():
    """A listener on 127.0.0.1 and one connection to it: (listener, client, accepted, port)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port))
    a, _ = lst.accept()
    return lst, c, a, port


def test_who_finds_this_process():
    lst, c, a, port = connected_pair()
    try:
        p = run("who", str(port), "--json")
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["port"] == port and doc["free"] is False
        assert [x["pid"] for x in doc["processes"]] == [os.getpid()]
        with open("/proc/self/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
        assert doc["processes"][0]["cmdline"] == " ".join(a.decode() for a in argv), doc
        states = sorted(s["state"] for s in doc["sockets"])
        assert states == ["ESTAB", "LISTEN"], states
        h = run("who", str(port))
        assert h.returncode == 0 and f"pid {os.getpid()}" in h.stdout, h.stdout
        # Only the port's own sockets: no machine-wide "tcp: ESTAB n, ..." summary
        # that would read as the port's counts.
        assert "tcp:" not in h.stdout and "TIME-WAIT" not in h.stdout, h.stdout
        assert len([ln for ln in h.stdout.splitlines() if ln.startswith("tcp ")]) == 2, h.stdout
    finally:
        for s in (a, c, lst):
            s.close()


def test_who_free_port_exits_1():
    # A free port below the ephemeral range: port 0's pick could be taken again at once
    # by another test's connection or listener (CI saw a pytest worker holding it).
    import random
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(100):
        port = random.randrange(20000, lo)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
        finally:
            s.close()
    p = run("who", str(port), "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["free"] is True and doc["processes"] == []
    p = run("who", str(port))
    assert p.returncode == 1 and "free" in p.stdout


@pytest.mark.parametrize("args", [[], ["0"], ["70000"], ["x"], ["1", "2"], ["1", "--bogus"]])
def test_who_usage_errors_exit_2(args):
    assert run("who", *args).returncode == 2


def test_ports_usage_error_exit_2():
    assert run("ports", "--bogus").returncode == 2


def test_serve_in_use_names_the_holder(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = run("serve", str(tmp_path), "--port", str(port), timeout=10)
        assert p.returncode == 1
        assert f"pid {os.getpid()}" in p.stderr, p.stderr
        assert "--port 0" in p.stderr
    finally:
        s.close()


def test_owner_not_visible_without_privileges_shows_dash():
    """As root, run loopkit as nobody: the test's (root's) socket is listed with its user
    but no owner, and the human output shows '-'."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("needs root and setpriv to run as another user")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    pre = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", LOOPKIT]
    try:
        p = subprocess.run(pre + ["ports", "--tcp", "--json"], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 0, p.stderr
        rows = [r for r in json.loads(p.stdout)["sockets"] if r["local_port"] == port]
        assert len(rows) == 1 and rows[0]["owners"] == [] and rows[0]["user"] == "root", rows
        h = subprocess.run(pre + ["ports", "--tcp"], capture_output=True, text=True, timeout=10)
        line = [ln for ln in h.stdout.splitlines() if f"127.0.0.1:{port} " in ln]
        assert line and re.search(r"LISTEN\s+-\s+root\s+-", line[0]), h.stdout
        w = subprocess.run(pre + ["who", str(port)], capture_output=True, text=True, timeout=10)
        assert w.returncode == 0 and "this user cannot see; run as root" in w.stdout, w.stdout
    finally:
        s.close()


def test_who_as_root_in_another_pid_namespace_does_not_say_run_as_root():
    """Root in a pid namespace of its own cannot see the holder (this test, outside it):
    `who` says where the holder is instead of telling root to run as root."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        pytest.skip("needs root and unshare to make a pid namespace")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        w = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", LOOPKIT, "who",
                            str(port)], capture_output=True, text=True, timeout=10)
    finally:
        s.close()
    assert w.returncode == 0, w.stderr
    assert "run as root" not in w.stdout, w.stdout
    assert "in another pid namespace or container, which root cannot see" in w.stdout, w.stdout
    assert re.search(rf"127\.0\.0\.1:{port}\s+\*\s+0\s+1\s+LISTEN\s+-\s+root\s+-", w.stdout), w.stdout


def ss_rows(*args):
    """ss's own listing (-H: no header), one list of fields per socket."""
    p = subprocess.run([SS, "-Htn", *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return [ln.split() for ln in p.stdout.splitlines() if ln.strip()]


def test_port_and_state_filters_match_ss():
    """--port (ss's sport = :N) and --state (ss's state filter), alone and together."""
    lst, c, a, port = connected_pair()
    try:
        def states(*args):
            p = run("ports", "--tcp", "--json", *args)
            assert p.returncode == 0, p.stderr
            return sorted((r["state"], r["local_port"]) for r in json.loads(p.stdout)["sockets"])
        assert states("--port", str(port)) == [("LISTEN", port)]
        assert states("-p", str(port), "--all") == [("ESTAB", port), ("LISTEN", port)]
        assert states("-p", str(port), "--state", "established") == [("ESTAB", port)]
        assert states("-p", str(port), "--state", "listen") == [("LISTEN", port)]
        est = [r for r in states("--state", "established") if r[1] in (port, c.getsockname()[1])]
        assert est == sorted([("ESTAB", port), ("ESTAB", c.getsockname()[1])]), est
        want = len(ss_rows("state", "established", f"( sport = :{port} )"))
        assert want == 1 and len(states("-p", str(port), "--state", "established")) == want
        h = run("ports", "-p", str(port), "--state", "established")
        lines = h.stdout.splitlines()
        assert lines[0].split()[:5] == ["PROTO", "LOCAL", "REMOTE", "RECV-Q", "SEND-Q"], h.stdout
        assert len(lines) == 2 and "ESTAB" in lines[1] and "tcp:" not in h.stdout, h.stdout
        bad = run("ports", "--state", "listening")
        assert bad.returncode == 2 and "time-wait" in bad.stderr, bad.stderr
    finally:
        for s in (a, c, lst):
            s.close()


def test_listener_queues_show_the_backlog_fill_like_ss():
    """RECV-Q/SEND-Q of a listener: connections waiting to be accepted, and the backlog."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        p = run("ports", "-p", str(port), "--json")
        rows = json.loads(p.stdout)["sockets"]
        assert [(r["recv_q"], r["send_q"]) for r in rows] == [(3, 8)], rows
        ss = ss_rows("-l", f"( sport = :{port} )")
        assert [(int(f[1]), int(f[2])) for f in ss] == [(3, 8)], ss  # State Recv-Q Send-Q
        h = run("ports", "--port", str(port))
        assert re.search(rf"127\.0\.0\.1:{port}\s+3\s+8\s+LISTEN\s", h.stdout), h.stdout
    finally:
        for s in waiting + [lst]:
            s.close()


def test_t_hint_names_no_flag_ports_lacks():
    p = run("ports", "-t")
    assert p.returncode == 2 and "--tcp" in p.stderr and "--threads" not in p.stderr, p.stderr
    p = run("ports", "8080")
    assert p.returncode == 2 and "loopkit ports --port 8080" in p.stderr, p.stderr


def test_a_time_wait_socket_has_no_owning_user():
    """A TIME-WAIT socket has no socket object left, so no owner: the table says '-' and
    the JSON null, not root (a new-user pass read 'root' as the owner)."""
    lst, c, a, port = connected_pair()
    cport = c.getsockname()[1]
    c.close()  # the client closes first: its side goes to TIME-WAIT
    a.close()
    lst.close()
    rows, deadline = [], time.monotonic() + 3
    while not rows and time.monotonic() < deadline:  # the FIN exchange may still run
        p = run("ports", "--tcp", "--json", "--state", "time-wait", "-p", str(cport))
        assert p.returncode == 0, p.stderr
        # this connection's: its local port may also be in TIME-WAIT to other servers
        rows = [r for r in json.loads(p.stdout)["sockets"] if r["remote_port"] == port]
    assert len(rows) == 1 and rows[0]["state"] == "TIME-WAIT", rows
    assert rows[0]["uid"] is None and rows[0]["user"] is None and rows[0]["owners"] == [], rows
    h = run("ports", "--tcp", "--state", "time-wait", "-p", str(cport))
    line = [ln for ln in h.stdout.splitlines() if "TIME-WAIT" in ln and f"127.0.0.1:{port} " in ln]
    assert len(line) == 1 and line[0].split()[-3:] == ["-", "-", "-"], h.stdout


def test_a_socket_bound_to_a_wildcard_without_listening_is_not_exposed():
    """It accepts nothing: --all lists it (UNCONN), not EXPOSED (a hostile pass)."""
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    try:
        p = run("ports", "--all", "--tcp", "--json", "-p", str(port))
        rows = [r for r in json.loads(p.stdout)["sockets"] if r["inode"]]
        h = run("ports", "--all", "--tcp", "-p", str(port))
    finally:
        s.close()
    assert len(rows) == 1 and rows[0]["state"] == "UNCONN" and rows[0]["exposed"] is False, rows
    line = [ln for ln in h.stdout.splitlines() if f"0.0.0.0:{port}" in ln]
    assert len(line) == 1 and "EXPOSED" not in line[0], h.stdout


def assert_serve_starts(root, port):
    """loopkit serve starts on 127.0.0.1:port (and is stopped)."""
    p = subprocess.Popen([LOOPKIT, "serve", str(root), "--port", str(port), "-q"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == f"http://127.0.0.1:{port}/\n", p.stderr.read() if p.poll() else ""
    finally:
        p.terminate()
        p.wait(10)


@pytest.mark.parametrize("state,mapped", [("TIME-WAIT", False), ("FIN-WAIT-2", False), ("TIME-WAIT", True)])
def test_who_names_what_the_kernel_keeps_when_it_blocks_a_server(state, mapped, tmp_path):
    """A client's port left in TIME-WAIT (or FIN-WAIT-2) without SO_REUSEADDR keeps a
    server out for up to a minute, though no process holds it: who said "free" (exit 1),
    and `who PORT || start-server` then failed. A v4-mapped leftover ([::ffff:127.0.0.1]
    of a dual-stack client) is the same 127.0.0.1 to a server: its trial bind used the
    mapped address, failed with EINVAL, and said free."""
    port, socks = connection_on_a_port(state, mapped=mapped)
    try:
        held = ("a connection that ended, in TIME-WAIT (the kernel frees the port within 60 s)"
                if state == "TIME-WAIT" else
                "a closed connection the kernel is still ending (FIN-WAIT-2: its peer has not closed its end; "
                f"freed within {fin_timeout()} s, net.ipv4.tcp_fin_timeout)")
        h = run("who", str(port))
        assert (h.returncode, h.stdout) == (0, f"port {port} on 127.0.0.1 is held by {held}; no process holds it, "
                                               "yet a server's bind there fails until then\n")
        j = run("who", str(port), "--json")
        assert (j.returncode, json.loads(j.stdout)) == (0, {
            "port": port, "free": False,
            "kernel": {"sockets": 1, "address": "127.0.0.1", "state": state, "blocks_bind": True,
                       "blocks_twin": False},
            "processes": [], "sockets": []})
        s = run("serve", str(tmp_path), "--port", str(port))
        assert s.returncode == 1 and f"is held by {held}" in s.stderr, s.stderr
    finally:
        for x in socks:
            x.close()


def test_who_names_the_address_a_leftover_blocks(tmp_path):
    """A leftover on 127.0.0.2 keeps servers out of 127.0.0.2 only: who names that
    address, and serve on its default 127.0.0.1 starts."""
    port, socks = connection_on_a_port("TIME-WAIT", addr="127.0.0.2")
    try:
        h = run("who", str(port))
        assert (h.returncode, h.stdout) == (0, f"port {port} on 127.0.0.2 is held by a connection that ended, in "
                                               "TIME-WAIT (the kernel frees the port within 60 s); no process "
                                               "holds it, yet a server's bind there fails until then\n")
        assert_serve_starts(tmp_path, port)
    finally:
        for x in socks:
            x.close()


def test_who_says_free_when_what_the_kernel_keeps_lets_a_server_bind(tmp_path):
    """The same TIME-WAIT from a client that set SO_REUSEADDR does not keep a server
    out: who says free (exit 1), names what is left, and serve binds there."""
    port, socks = connection_on_a_port("TIME-WAIT", reuse=True)
    try:
        h = run("who", str(port))
        # ... though not loopkit's listeners on ::1, which hold 127.0.0.1 as their twin
        assert (h.returncode, h.stdout) == (1, f"port {port}: free for a server (servers bind with SO_REUSEADDR); "
                                               "left on 127.0.0.1: a connection that ended, in TIME-WAIT (the "
                                               "kernel frees the port within 60 s). It keeps out loopkit's "
                                               "listeners on ::1 until then: they hold 127.0.0.1 too, without "
                                               "that option\n")
        assert json.loads(run("who", str(port), "--json").stdout)["kernel"] == {
            "sockets": 1, "address": "127.0.0.1", "state": "TIME-WAIT", "blocks_bind": False, "blocks_twin": True}
        assert_serve_starts(tmp_path, port)
    finally:
        for x in socks:
            x.close()


def time_wait_on(port, addr, reuse):
    """A TIME-WAIT on addr:port: a client bound there (SO_REUSEADDR when reuse) closes first."""
    for x in connection_on_a_port("TIME-WAIT", reuse=reuse, addr=addr, port=port)[1]:
        x.close()


def free_port_on_both():
    """A port nothing holds on 127.0.0.1 nor ::1, no leftover either (free_port, checked)."""
    for _ in range(50):
        port = free_port()
        if not subprocess.run(["ss", "-Htan", f"sport = :{port}"], capture_output=True, text=True).stdout.strip():
            return port
    raise AssertionError("no free port")


@pytest.mark.skipif(not has_ipv6(), reason="needs ::1")
def test_who_and_doctor_name_a_leftover_that_keeps_loopkits_twin_out(tmp_path):
    """A TIME-WAIT on [::1]:P that had SO_REUSEADDR does not stop a server on 127.0.0.1
    that binds only there, but it stops loopkit's listeners, which hold [::1]:P too as
    their twin (without that option, so no one else can). who said plainly "free" and
    doctor "free"; serve then failed."""
    port = free_port_on_both()
    time_wait_on(port, "::1", reuse=True)
    h = run("who", str(port))
    assert (h.returncode, h.stdout) == (1, f"port {port}: free for a server (servers bind with SO_REUSEADDR); left "
                                           "on ::1: a connection that ended, in TIME-WAIT (the kernel frees the port "
                                           "within 60 s). It keeps out loopkit's listeners on 127.0.0.1 until then: "
                                           "they hold ::1 too, without that option\n")
    assert json.loads(run("who", str(port), "--json").stdout)["kernel"] == {
        "sockets": 1, "address": "::1", "state": "TIME-WAIT", "blocks_bind": False, "blocks_twin": True}
    doc = json.loads(run("doctor", "--port", str(port), "--json").stdout)
    (c,) = [c for c in doc["checks"] if c["name"] == "port"]
    assert c["status"] == "WARN" and c["detail"].startswith(
        f"port {port} cannot be bound by this user on ::1: Address already in use;"), c
    s = run("serve", str(tmp_path), "--port", str(port))
    assert s.returncode == 1 and f"port {port} on ::1 is held by a connection that ended" in s.stderr, s.stderr


def test_who_finds_the_blocking_leftover_among_many():
    """99 harmless leftovers (SO_REUSEADDR) on 127.0.0.2-100 and one on 127.0.0.1 without
    it: who tries 127.0.0.1 first, and says held. It tried the first 8 addresses in the
    kernel's order, and could say free."""
    port = free_port_on_both()
    time_wait_on(port, "127.0.0.1", reuse=False)
    for i in range(2, 101):
        time_wait_on(port, f"127.0.0.{i}", reuse=True)
    j = run("who", str(port), "--json")
    assert (j.returncode, json.loads(j.stdout)["kernel"]) == (0, {
        "sockets": 100, "address": "127.0.0.1", "state": "TIME-WAIT", "blocks_bind": True, "blocks_twin": False})


def test_who_reports_a_blocking_leftover_beside_a_process(tmp_path):
    """A process's connection on 127.0.0.2:P and a TIME-WAIT on 127.0.0.1:P: who names
    both (the JSON's kernel part was zeroes, "address":"?"), and serve's bind error on
    127.0.0.1 names the TIME-WAIT, not the connection on the other address (it did)."""
    port = free_port_on_both()
    time_wait_on(port, "127.0.0.1", reuse=False)
    with socket.socket() as lst, socket.socket() as c:
        lst.bind(("127.0.0.3", 0))
        lst.listen()
        c.bind(("127.0.0.2", port))
        c.connect(lst.getsockname())
        j = run("who", str(port), "--json")
        doc = json.loads(j.stdout)
        assert (j.returncode, doc["free"], doc["kernel"]) == (0, False, {
            "sockets": 1, "address": "127.0.0.1", "state": "TIME-WAIT", "blocks_bind": True, "blocks_twin": False})
        assert [x["pid"] for x in doc["processes"]] == [os.getpid()]
        h = run("who", str(port))
        assert ("  and on 127.0.0.1, with no process: a connection that ended, in TIME-WAIT (the kernel frees the "
                "port within 60 s)\n") in h.stdout, h.stdout
        r = run("serve", str(tmp_path), "--port", str(port))
        assert (r.returncode, r.stderr) == (1, f"loopkit serve: port {port} on 127.0.0.1 is held by a connection "
                                               "that ended, in TIME-WAIT (the kernel frees the port within 60 s); "
                                               "try --port 0 for any free port\n")
