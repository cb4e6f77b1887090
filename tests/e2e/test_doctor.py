"""`loopkit doctor`: its JSON schema and exit code, the port check naming a holder, and
in network namespaces the test makes: lo down, lo up, and a DROP rule on lo."""
import json
import os
import re
import socket
import subprocess

import pytest

from conftest import free_port, LOOPKIT, connection_on_a_port, hard_timeout_fixture, need_tool

_hard_timeout = hard_timeout_fixture(40)

NAMES = ["lo", "addresses", "localhost", "icmp4", "icmp6", "tcp4", "tcp6", "udp4", "udp6",
         "ephemeral", "port", "limits", "isolate"]
STATUSES = {"PASS", "WARN", "FAIL", "SKIP"}


def run(*args, prefix=(), timeout=20):
    return subprocess.run(list(prefix) + [LOOPKIT, "doctor"] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def checks(doc):
    return {c["name"]: c for c in doc["checks"]}




def ephemeral():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return tuple(map(int, f.read().split()))


@pytest.mark.uses("port-62893")
def test_json_schema_and_exit_code():
    p = run("--json")
    doc = json.loads(p.stdout)
    assert set(doc) == {"checks", "summary"}
    assert [c["name"] for c in doc["checks"]] == NAMES
    for c in doc["checks"]:
        assert set(c) == {"name", "status", "detail", "hint", "ms"}, c
        assert c["status"] in STATUSES and c["detail"], c
        assert isinstance(c["ms"], (int, float)) and 0 <= c["ms"] < 5000, c
        assert (c["hint"] == "") == (c["status"] == "PASS"), c
    s = doc["summary"]
    assert set(s) == {"pass", "warn", "fail", "skip"}
    for k in s:
        assert s[k] == sum(c["status"] == k.upper() for c in doc["checks"])
    assert p.returncode == (1 if s["fail"] else 0), p.stderr


def test_human_output():
    p = run("--port", str(free_port()), timeout=20)
    for name in NAMES:
        assert f"  {name} " in p.stdout, name
    assert " pass, " in p.stdout and "loopback stack is" in p.stdout
    assert "\033[" not in p.stdout  # not a TTY: no colour


@pytest.mark.parametrize("reuse", [False, True])
def test_port_check_names_what_the_kernel_keeps(reuse):
    """A client's port in TIME-WAIT: without SO_REUSEADDR it keeps serve out, and the
    check says by what; with it, serve (which binds with SO_REUSEADDR) can take the
    port, and so the check passes. Its trial bind used no SO_REUSEADDR and warned in
    both cases, with a hint that only guessed."""
    port, socks = connection_on_a_port("TIME-WAIT", reuse=reuse)
    try:
        c = checks(json.loads(run("--json", "--port", str(port)).stdout))["port"]
    finally:
        for x in socks:
            x.close()
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    iana = "user" if port < 49152 else "dynamic"
    where = f"inside the ephemeral range {lo}-{hi}, IANA {iana} port"  # the client's port came from there
    if reuse:  # free: the one warning left is the ephemeral range's
        want = ("WARN", f"port {port} is free; {where}",
                f"outgoing connections may take port {port} at any time: reserve it (sysctl -w "
                f"net.ipv4.ip_local_reserved_ports={port}) or narrow net.ipv4.ip_local_port_range")
    else:
        want = ("WARN", f"port {port} cannot be bound by this user on 127.0.0.1: Address already in use; {where}",
                "no listener holds it, but a connection that ended, in TIME-WAIT (the kernel frees the port "
                "within 60 s) does: use another port (loopkit serve --port 0)")
    assert (c["status"], c["detail"], c["hint"]) == want, c


def test_port_check_names_the_holder():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        c = checks(json.loads(run("--json", "--port", str(port)).stdout))["port"]
    finally:
        s.close()
    assert c["status"] == "WARN", c
    assert f"pid {os.getpid()}" in c["detail"] and f"port {port} is held by" in c["detail"], c
    assert f"loopkit who {port}" in c["hint"], c


def test_port_check_owner_root_cannot_see_is_not_sent_to_who():
    """A holder this run cannot name: as nobody the hint says to run `who` as root; as root
    in a pid namespace of its own (the holder, this test, is outside it) the detail says
    where the holder is and the hint does not send the user to `who`, which cannot name it
    either."""
    if os.geteuid() != 0:
        pytest.skip("needs root: to run as nobody, and to make a pid namespace")
    setpriv = need_tool("setpriv", "util-linux")
    unshare = need_tool("unshare", "util-linux")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        nobody = checks(json.loads(run("--json", "--port", str(port), prefix=[
            setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]).stdout))["port"]
        pidns = checks(json.loads(run("--json", "--port", str(port), prefix=[
            unshare, "--pid", "--fork", "--mount-proc"]).stdout))["port"]
    finally:
        s.close()
    assert nobody["status"] == "WARN", nobody
    assert "a process of user root this user cannot see" in nobody["detail"], nobody
    assert nobody["hint"].startswith(f"as root, loopkit who {port} shows"), nobody
    assert pidns["status"] == "WARN", pidns
    assert "a process of user root in another pid namespace or container" in pidns["detail"]
    assert "cannot see" not in pidns["detail"], pidns
    assert "loopkit who" not in pidns["hint"] and "root cannot name it" in pidns["hint"], pidns


@pytest.mark.uses("port-62893")
def test_port_check_free_class_and_range():
    lo, hi = ephemeral()
    c = checks(json.loads(run("--json").stdout))["port"]
    assert "62893" in c["detail"] and "IANA dynamic port" in c["detail"], c
    where = "inside" if lo <= 62893 <= hi else "outside"
    assert f"{where} the ephemeral range" in c["detail"], c
    port = free_port()  # the kernel picks it from its ephemeral range
    c = checks(json.loads(run("--json", "--port", str(port)).stdout))["port"]
    assert c["status"] == "WARN" and "is free" in c["detail"], c
    assert "inside the ephemeral range" in c["detail"] and "ip_local_reserved_ports" in c["hint"]


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "x"], ["extra"], ["--bogus"]])
def test_usage_errors_exit_2(args):
    assert run(*args).returncode == 2


# --- in a network namespace of the test's own ------------------------------------------

def netns_prefix():
    unshare = need_tool("unshare", "util-linux")
    for pre in ([unshare, "-n"], [unshare, "-rn"]):
        if subprocess.run(pre + ["true"], capture_output=True, timeout=10).returncode == 0:
            return pre
    pytest.skip("cannot create a network namespace here (needs root or user namespaces)")


def in_netns(script):
    """Runs `sh -c script` in a new network namespace; $LK is the binary."""
    return subprocess.run(netns_prefix() + ["sh", "-c", script], capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, LK=LOOPKIT))


def test_netns_lo_down_fails():
    p = in_netns('exec "$LK" doctor --json')
    assert p.returncode == 1, p.stderr
    c = checks(json.loads(p.stdout))
    assert c["lo"]["status"] == "FAIL" and "DOWN" in c["lo"]["detail"]
    assert "ip link set lo up" in c["lo"]["hint"]
    assert c["tcp4"]["status"] == "FAIL"


def test_netns_lo_up_passes():
    need_tool("ip", "iproute2")
    p = in_netns('ip link set lo up && exec "$LK" doctor --json')
    doc = json.loads(p.stdout)
    c = checks(doc)
    assert doc["summary"]["fail"] == 0, [x for x in doc["checks"] if x["status"] == "FAIL"]
    assert p.returncode == 0
    for name in ("lo", "addresses", "tcp4", "udp4", "ephemeral", "port"):
        assert c[name]["status"] == "PASS", c[name]
    assert c["port"]["detail"].startswith("port 62893 is free")


def test_netns_firewall_on_lo_is_named():
    need_tool("nft", "nftables")
    need_tool("ip", "iproute2")
    script = ('ip link set lo up && '
              'nft add table inet lk && '
              'nft add chain inet lk in "{ type filter hook input priority 0; }" && '
              'nft add rule inet lk in iifname lo drop || exit 99; '
              'exec "$LK" doctor --json')
    p = in_netns(script)
    if p.returncode == 99:
        pytest.skip("nftables rules cannot be added here: " + p.stderr[-200:])
    assert p.returncode == 1, p.stderr
    c = checks(json.loads(p.stdout))
    assert c["lo"]["status"] == "PASS"
    for name in ("tcp4", "udp4"):
        assert c[name]["status"] == "FAIL", c[name]
        assert "firewall" in c[name]["hint"] and "lo" in c[name]["hint"], c[name]


def run_on_tty(args, env):
    """Runs loopkit with stdout on a pseudo-terminal; returns what it wrote."""
    import pty
    import select as sel
    master, slave = pty.openpty()
    proc = subprocess.Popen([LOOPKIT] + args, stdout=slave, stderr=subprocess.DEVNULL,
                            env=env)
    os.close(slave)
    out = b""
    try:
        while True:
            r, _, _ = sel.select([master], [], [], 10)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        proc.wait(10)
    return out.decode(errors="replace")


@pytest.mark.parametrize("args", [["doctor"], ["ports", "--all"]])
def test_colour_only_on_a_tty_and_never_with_no_color(args):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    s = None
    if args[0] == "ports":  # something EXPOSED to colour
        s = socket.socket()
        s.bind(("0.0.0.0", 0))
        s.listen(1)
    try:
        assert "\033[" in run_on_tty(args, env)
        assert "\033[" not in run_on_tty(args, dict(env, NO_COLOR="1"))
    finally:
        if s:
            s.close()


def test_docs_and_readme_show_every_check():
    """docs/doctor.md's table and example output list every check the binary runs, in its
    order, and the summaries there and in the README count them all."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    text = open(os.path.join(root, "docs", "doctor.md")).read()
    table = re.findall(r"^\| `([a-z0-9]+)`(?:, `([a-z0-9]+)`)? \|", text, re.M)
    assert [n for row in table for n in row if n] == NAMES, table
    example = text.split("$ loopkit doctor\n")[1].split("```")[0]
    assert re.findall(r"^(?:PASS|WARN|FAIL|SKIP)\s+(\S+)", example, re.M) == NAMES, example
    m = re.search(r"^(\d+) pass, (\d+) warn, (\d+) fail, (\d+) skip", example, re.M)
    assert m and sum(map(int, m.groups())) == len(NAMES), example
    m = re.search(r'"summary":\{"pass":(\d+),"warn":(\d+),"fail":(\d+),"skip":(\d+)\}', text)
    assert m and sum(map(int, m.groups())) == len(NAMES), "docs/doctor.md's JSON summary"
    readme = open(os.path.join(root, "README.md")).read()
    sample = readme.split("$ loopkit doctor\n")[1].split("```")[0]
    m = re.search(r"^(\d+) pass, (\d+) warn, (\d+) fail, (\d+) skip", sample, re.M)
    assert m and sum(map(int, m.groups())) == len(NAMES), sample


def test_port_check_names_a_holder_that_binds_without_listening():
    """A socket bound to the port but not listening holds it as well (a bind fails with
    EADDRINUSE): doctor named it 'free', and serve could not name its holder."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        c = checks(json.loads(run("--json", "--port", str(port)).stdout))["port"]
        serve = subprocess.run([LOOPKIT, "serve", "--port", str(port)], capture_output=True, text=True,
                               timeout=20)
    finally:
        s.close()
    assert c["status"] == "WARN", c
    assert f"port {port} is held by python3 (pid {os.getpid()})" in c["detail"], c
    assert serve.returncode == 1, serve
    assert f"port {port} on 127.0.0.1 is held by python3 (pid {os.getpid()})" in serve.stderr, serve.stderr


def test_port_check_a_privileged_port_for_an_unprivileged_user():
    """As nobody, port 80 is not usable for a dev server however free it is: WARN with the
    sysctl that decides, not PASS 'free'."""
    if os.geteuid() != 0:
        pytest.skip("needs root: to run as nobody")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        start = int(f.read())
    if start <= 80:
        pytest.skip(f"net.ipv4.ip_unprivileged_port_start={start}: port 80 is not privileged here")
    setpriv = need_tool("setpriv", "util-linux")
    p = run("--json", "--port", "80", prefix=[setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"])
    c = checks(json.loads(p.stdout))["port"]
    assert c["status"] == "WARN", c
    assert c["detail"].startswith("port 80 cannot be bound by this user on 127.0.0.1: Permission denied"), c
    assert f"ports below {start} need root or CAP_NET_BIND_SERVICE" in c["hint"], c
    root = checks(json.loads(run("--json", "--port", "80").stdout))["port"]
    assert root["status"] == "PASS" or "held by" in root["detail"], root  # root may bind it
