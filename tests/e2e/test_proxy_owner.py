"""loopkit proxy's control API answers only the user who runs the proxy, and root
(hostile review, finding 2).

On loopback every user is 127.0.0.1: on the old build another user re-pointed the
owner's proxy at its own listener and read the owner's traffic, credentials included.
The attacker runs as `nobody` with Python's http.client; the owner is the test runner.
"""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import LOOPKIT, hard_timeout_fixture
from proxyutil import echo_up, proxies  # noqa: F401 (fixtures)

_hard_timeout = hard_timeout_fixture(60)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

CREDS = b"Authorization: Basic ZGJ1c2VyOmRicGFzc3dvcmQ=\r\n"
WHY = "the control API answers only the user who runs the proxy, and root"

# argv: API address, seconds to wait for captured traffic. Tries to re-point the
# proxy "proxy" at a listener of its own, then every other route; prints one line
# per call ("STATUS BODY"), READY, then "CAPTURED" and the bytes that reached its listener.
ATTACKER = r'''
import http.client, json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1)
lst.settimeout(float(sys.argv[2]))
def call(method, path, body=None):
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    text = r.read().decode(errors="replace").strip()
    c.close()
    return f"{r.status} {text}"
print(call("POST", "/proxies/proxy", {"upstream": f"127.0.0.1:{lst.getsockname()[1]}"}), flush=True)
for m, p in [("GET", "/proxies"), ("POST", "/reset"), ("GET", "/version"), ("GET", "/metrics"),
             ("DELETE", "/proxies/proxy/toxics/none"), ("POST", "/populate"), ("GET", "/no-such-route")]:
    print(call(m, p), flush=True)
print("READY", flush=True)
# Everything that reaches the listener in the window. Other tests running beside this
# one (a port scan of 127.0.0.1, say) may connect and send nothing or their probes:
# what matters is whether the owner's request arrives.
got = b""
try:
    while True:
        c, _ = lst.accept()
        c.settimeout(1)
        try:
            while chunk := c.recv(65536):
                got += chunk
        except socket.timeout:
            pass
        c.close()
except socket.timeout:
    pass
print("CAPTURED", got, flush=True)
'''


@needs_root
def test_another_user_cannot_repoint_the_proxy(proxies, echo_up):
    p = proxies(echo_up.addr)
    att = subprocess.Popen(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", ATTACKER, p.api_addr, "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    calls = []
    while True:
        line = att.stdout.readline()
        if not line or line.strip() == "READY":
            break
        calls.append(line.strip())
    # The owner's test sends its credentials through the proxy.
    s = p.connect(timeout=3)
    req = b"GET /a.txt HTTP/1.1\r\nHost: db\r\n" + CREDS + b"\r\n"
    s.sendall(req)
    got = b""
    try:
        while len(got) < len(req):
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    out, err = att.communicate(timeout=15)
    assert att.returncode == 0, err
    captured = out.strip()
    assert captured.startswith("CAPTURED b"), out
    assert "GET /a.txt" not in captured and "ZGJ1c2VyOmRicGFzc3dvcmQ=" not in captured, \
        f"the attacker read the owner's traffic: {out} (after {calls})"
    assert len(calls) == 8, calls
    for c in calls:
        assert c.startswith("403 "), calls
        assert "your connection belongs to uid 65534, the proxy runs as uid 0" in c and WHY in c, c
    assert got == req, "the owner's traffic did not reach its upstream"
    # Nothing changed: the owner still sees its proxy as it was.
    st, body = p.api("GET", "/proxies/proxy")
    assert st == 200 and body["upstream"] == echo_up.addr and body["enabled"] is True, body


def nobody_can_run(path):
    """A copy of the binary nobody can execute (the build tree may not be reachable)."""
    d = tempfile.mkdtemp(prefix="lk-nobody-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, "loopkit")
    shutil.copy2(path, dst)
    os.chmod(dst, 0o755)
    return d, dst


@needs_root
def test_root_and_the_proxys_own_user_are_answered(echo_up):
    """A proxy run by nobody answers nobody (its owner) and root (who could anyway)."""
    d, lk = nobody_can_run(LOOPKIT)
    run = os.path.join(d, "run")  # nobody's runtime directory (its port lease), not /tmp's
    os.mkdir(run, 0o700)
    os.chown(run, 65534, 65534)
    proc = subprocess.Popen([lk, "proxy", echo_up.addr, "--api", "127.0.0.1:0"], user=65534, group=65534,
                            extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": run},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        api = None
        while api is None:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("api "):
                api = line.split()[1][len("http://"):].rstrip("/")
        host, port = api.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=5)
        c.request("GET", "/version")
        r = c.getresponse()
        assert r.status == 200, r.read()
        c.close()
        own = subprocess.run(["runuser", "-u", "nobody", "--", "curl", "-sS", "-o", "/dev/null", "-w",
                              "%{http_code}", f"http://{api}/proxies"], capture_output=True, text=True, timeout=10)
        assert own.stdout == "200", own
    finally:
        proc.terminate()
        rc = proc.wait(timeout=10)
        shutil.rmtree(d)
    assert rc == 0, proc.stderr.read()


def test_the_owner_still_drives_its_proxy(proxies, echo_up):
    p = proxies(echo_up.addr)
    st, body = p.api("POST", "/proxies/proxy/toxics", {"type": "latency", "attributes": {"latency": 1}})
    assert st == 200, body
    st, body = p.api("GET", "/proxies")
    assert st == 200 and body["proxy"]["toxics"][0]["type"] == "latency", body
    assert p.api("POST", "/reset")[0] == 204
