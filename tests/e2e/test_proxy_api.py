"""loopkit proxy's control API: toxiproxy's routes, JSON and status codes, driven by the
unchanged toxiproxy-node-client from npm, and bad input answered with clear errors."""
import http.client
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import LOOPKIT
from proxyutil import NPM_DIR, Proxy, echo_up, measures, proxies  # noqa: F401 (fixtures)

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")



@pytest.fixture
def proxy(echo_up):
    p = Proxy(echo_up.addr)
    yield p
    alive = p.proc.poll() is None
    log = p.stderr()
    assert p.stop() == 0 and alive, log


def node(script, *args):
    env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
    r = subprocess.run(["node", os.path.join(NODE_DIR, script), *args], capture_output=True, text=True,
                       timeout=60, env=env)
    return r


def test_toxiproxy_node_client_drives_loopkit(proxy, echo_up):
    r = node("toxiproxy_client.js", f"http://{proxy.api_addr}", echo_up.addr)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = {}
    for line in r.stdout.splitlines():
        d = json.loads(line)
        steps[d["step"]] = d["v"]
    assert json.loads(steps["version"])["version"]
    c = steps["create"]
    assert c["name"] == "node" and c["upstream"] == echo_up.addr and c["enabled"] is True
    assert c["listen"].startswith("127.0.0.1:") and not c["listen"].endswith(":0")
    assert sorted(steps["list"]) == ["node", "proxy"]
    assert steps["add"] == {"attributes": {"latency": 120, "jitter": 5}, "name": "latency_downstream",
                            "stream": "downstream", "toxicity": 1, "type": "latency"}
    assert steps["update"]["attributes"] == {"latency": 80, "jitter": 5}  # jitter kept
    assert steps["update"]["toxicity"] == 0.5
    assert steps["get"] == steps["update"]
    assert steps["add2"]["stream"] == "upstream" and steps["add2"]["name"] == "slow"
    assert [t["name"] for t in steps["after_remove"]] == ["latency_downstream"]
    assert steps["disable"]["enabled"] is False and steps["enable"]["enabled"] is True
    assert steps["enable"]["listen"] == c["listen"]
    assert steps["reset"] == {"name": "node", "listen": c["listen"], "upstream": echo_up.addr, "enabled": True,
                              "toxics": []}
    assert steps["populate"] == ["node", "pop2"]
    assert steps["duplicate"] == "Request failed with status code 409"
    assert steps["bad_type"] == "Request failed with status code 400"
    assert steps["final"] == ["node", "proxy"]
    # the proxy the client made works
    port = int(c["listen"].rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"hi")
    assert s.recv(10) == b"hi"
    s.close()


@pytest.mark.parametrize("method,path,body,status,error", [
    ("POST", "/proxies", "{", 400, "bad request body: "),
    ("POST", "/proxies", "", 400, "bad request body: EOF"),
    ("POST", "/proxies", '{"name":"a"}', 400, "missing required field: upstream"),
    ("POST", "/proxies", '{"upstream":"127.0.0.1:1"}', 400, "missing required field: name"),
    ("POST", "/proxies", '{"name":"proxy","upstream":"127.0.0.1:1"}', 409, "proxy already exists"),
    ("POST", "/proxies", '{"name":"x","upstream":"nohost"}', 400, "upstream nohost: want HOST:PORT"),
    ("POST", "/proxies", '{"name":"x","upstream":"127.0.0.1:99999"}', 400,
     "upstream 127.0.0.1:99999: the port: more than 65535"),
    ("POST", "/proxies", '{"name":"x","upstream":"10.1.2.3:80"}', 400, "add --allow-remote"),
    ("POST", "/proxies", '{"name":"x","upstream":"127.0.0.1:1","listen":"8.8.8.8:80"}', 400, "listen 8.8.8.8:80"),
    ("POST", "/proxies", '{"name":"x","upstream":"127.0.0.1:1","enabled":"yes"}', 400, "bad request body"),
    ("POST", "/proxies", '{"name":1,"upstream":"127.0.0.1:1"}', 400, "bad request body"),
    ("GET", "/proxies/nope", None, 404, "proxy not found"),
    ("GET", "/proxies/proxy/toxics/nope", None, 404, "toxic not found"),
    ("DELETE", "/proxies/proxy/toxics/nope", None, 404, "toxic not found"),
    ("POST", "/proxies/proxy/toxics", '{"type":"nope"}', 400, "invalid toxic type: 'nope'"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","stream":"sideways"}', 400, "stream was invalid"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latncy":1}}', 400,
     "latency has no attribute 'latncy'; it has latency jitter"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latency":-5}}', 400,
     "latency.latency must be between 0 and 3600000 (ms)"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latency":1e300}}', 400, "between 0"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latency":1.5}}', 400, "whole number"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latency":"100"}}', 400, "must be a number"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","toxicity":2}', 400, "toxicity must be a number from 0 to 1"),
    ("POST", "/proxies/proxy/toxics", '{"type":"slicer","attributes":{"average_size":10,"size_variation":10}}', 400,
     "size_variation must be smaller than average_size"),
    ("POST", "/proxies/proxy/toxics", '{"type":"http_header","attributes":{"name":"Bad Name","value":"x"}}', 400,
     "http_header.name must be a header name"),
    ("POST", "/proxies/proxy/toxics", '{"type":"bandwidth","attributes":{"rate":1000000001}}', 400, "rate must be"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","attributes":{"latency":1},"x":{"y":[' * 1 + '1]}}',
     200, None),
    ("PUT", "/proxies/proxy", "{}", 405, "this path takes GET, POST, PATCH, DELETE"),
    ("GET", "/populate", None, 405, "this path takes POST"),
    ("POST", "/populate", '{"name":"x"}', 400, "a JSON array of proxies is expected"),
    ("POST", "/populate", '[{"name":"x"}]', 400, "missing required field: upstream at proxy 1"),
    ("GET", "/nothing", None, 404, "no such API route"),
    ("POST", "/proxies/proxy/toxics", '{"type":"latency","name":"dup"}' + "", 200, None),
])
def test_bad_input_gets_toxiproxy_errors(proxy, method, path, body, status, error):
    st, resp = proxy.api(method, path, raw=body)
    assert st == status, resp
    if error:
        assert error in resp["error"] and resp["status"] == status, resp


NAME_RULE = "1 to 63 bytes of UTF-8, without '/', control characters or line separators"


@pytest.mark.parametrize("kind,name", [
    ("proxy", "a\nproxy: 9 connections"), ("proxy", "a/b"), ("proxy", "a\u2028b"), ("proxy", "a\u2029b"),
    ("toxic", "t\x1b[31m"), ("toxic", "t\x7f"), ("toxic", "t\x85x"), ("toxic", "t\x9b31m"),
    ("toxic", "t\u202ex"), ("toxic", "t\u2066x"), ("toxic", "t\u200fx"),
], ids=lambda v: v.encode("unicode_escape").decode())
def test_a_name_that_could_forge_or_reorder_output_is_refused(proxy, kind, name):
    """Names are printed in the log, the summary at exit and /metrics: C0 and C1
    controls, DEL, line separators and bidi controls are refused, as '/' is (it would
    cut the API's path)."""
    if kind == "proxy":
        st, body = proxy.api("POST", "/proxies", {"name": name, "upstream": "127.0.0.1:1"})
    else:
        st, body = proxy.api("POST", "/proxies/proxy/toxics", {"type": "latency", "name": name})
    assert (st, body) == (400, {"error": f"a {kind}'s name must be {NAME_RULE}", "status": 400})


def test_names_of_other_characters_are_taken(proxy):
    st, body = proxy.api("POST", "/proxies/proxy/toxics", {"type": "latency", "name": "caf\u00e9 \u2027 \u2030 \u2065"})
    assert (st, body["name"]) == (200, "caf\u00e9 \u2027 \u2030 \u2065")


def test_duplicate_toxic_is_409_and_proxy_keeps_serving(proxy):
    t = {"type": "latency", "name": "dup", "attributes": {"latency": 1}}
    assert proxy.api("POST", "/proxies/proxy/toxics", t)[0] == 200
    st, body = proxy.api("POST", "/proxies/proxy/toxics", t)
    assert (st, body) == (409, {"error": "toxic already exists", "status": 409})
    st, lst = proxy.api("GET", "/proxies/proxy/toxics")
    assert st == 200 and [x["name"] for x in lst] == ["dup"]
    s = proxy.connect()
    s.sendall(b"ok")
    assert s.recv(10) == b"ok"
    s.close()


def test_limits_are_errors(proxy, echo_up):
    for i in range(32):
        st, _ = proxy.api("POST", "/proxies/proxy/toxics", {"type": "latency", "name": f"t{i}"})
        assert st == 200
    st, body = proxy.api("POST", "/proxies/proxy/toxics", {"type": "latency", "name": "t32"})
    assert st == 400 and body["error"] == "at most 32 toxics on a proxy"
    st, body = proxy.api("POST", "/proxies", {"name": "n" * 64, "upstream": echo_up.addr})
    assert st == 400 and "1 to 63 bytes" in body["error"]
    big = "[" + ",".join(["1"] * 600000) + "]"
    st, body = proxy.api("POST", "/populate", raw=big)
    # over the engine's body limit for in-memory bodies; JSON, as every API error
    assert (st, body) == (413, {"error": "request body over the 1 MiB limit of API requests", "status": 413})


def test_a_listen_port_of_another_proxy_names_that_proxy(proxy, echo_up):
    taken = proxy.proxies["proxy"]
    st, body = proxy.api("POST", "/proxies", {"name": "second", "listen": taken, "upstream": echo_up.addr})
    # not "held by loopkit (pid <its own>)"
    assert (st, body) == (409, {"error": f"listen {taken}: proxy 'proxy' listens there", "status": 409})


def test_populate_with_a_name_twice_makes_the_later(proxy, echo_up):
    # toxiproxy: the later entry replaces the earlier; the earlier was made, deleted and
    # then answered from freed memory
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cfg = [{"name": "p", "listen": f"127.0.0.1:{ports[0]}", "upstream": echo_up.addr},
           {"name": "q", "listen": "127.0.0.1:0", "upstream": echo_up.addr},
           {"name": "p", "listen": f"127.0.0.1:{ports[1]}", "upstream": echo_up.addr}]
    st, body = proxy.api("POST", "/populate", cfg)
    assert st == 201 and [p["name"] for p in body["proxies"]] == ["q", "p"], body
    assert body["proxies"][1]["listen"] == f"127.0.0.1:{ports[1]}", body
    st, all_ = proxy.api("GET", "/proxies")
    assert all_["p"]["listen"] == f"127.0.0.1:{ports[1]}"
    with socket.create_connection(("127.0.0.1", ports[1]), timeout=5) as s:
        s.sendall(b"ok")
        assert s.recv(10) == b"ok"


def test_populate_is_idempotent_and_reset_restores(proxy, echo_up):
    cfg = [{"name": "a", "listen": "127.0.0.1:0", "upstream": echo_up.addr},
           {"name": "b", "listen": "127.0.0.1:0", "upstream": echo_up.addr, "enabled": False}]
    st, body = proxy.api("POST", "/populate", cfg)
    assert st == 201 and [p["name"] for p in body["proxies"]] == ["a", "b"]
    a_listen = body["proxies"][0]["listen"]
    st, body = proxy.api("POST", "/populate", [{"name": "a", "listen": a_listen, "upstream": echo_up.addr}])
    assert st == 201 and body["proxies"][0]["listen"] == a_listen  # the same proxy, untouched
    proxy.api("POST", "/proxies/a/toxics", {"type": "timeout"})
    st, _ = proxy.api("POST", "/reset")
    assert st == 204
    st, all_ = proxy.api("GET", "/proxies")
    assert all_["a"]["toxics"] == [] and all_["b"]["enabled"] is True
    st, _ = proxy.api("DELETE", "/proxies/b")
    assert st == 204 and proxy.api("GET", "/proxies/b")[0] == 404


def test_metrics_and_version(proxy):
    s = proxy.connect()
    s.sendall(b"12345")
    assert s.recv(10) == b"12345"
    s.close()
    host, port = proxy.api_addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/plain")
    assert f'toxiproxy_proxy_sent_bytes_total{{direction="upstream",proxy="proxy",listener="{proxy.proxies["proxy"]}"' in text
    # toxiproxy's pair: bytes read in and bytes sent out, each way (5 each, nothing swallowed)
    for name in ("received", "sent"):
        got = {d: v for d, v in re.findall(rf'toxiproxy_proxy_{name}_bytes_total{{direction="(\w+)",proxy="proxy"[^}}]*}} (\d+)', text)}
        assert got == {"upstream": "5", "downstream": "5"}, (name, text)
    assert 'loopkit_proxy_connections_total{proxy="proxy"} 1' in text
    st, v = proxy.api("GET", "/version")
    assert st == 200 and v["version"]


def test_metrics_escape_names_in_labels(proxy, echo_up):
    """A name with a quote or a backslash is escaped in /metrics (the text format's \\"
    and \\\\): it used to end the label and could forge another (proxy="b")."""
    name = 'a",proxy="b\\'
    assert proxy.api("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": echo_up.addr})[0] == 201
    assert proxy.api("POST", f"/proxies/{urllib.parse.quote(name, safe='')}/toxics",
                     {"type": "latency", "name": 't"x'})[0] == 200
    text = proxy.api("GET", "/metrics")[1]
    esc = 'a\\",proxy=\\"b\\\\'
    assert f'loopkit_proxy_connections_total{{proxy="{esc}"}} 0\n' in text, text
    assert f'loopkit_proxy_toxic_applied_total{{proxy="{esc}",toxic="t\\"x",type="latency"}} 0\n' in text, text
    assert f'{{direction="upstream",proxy="{esc}",listener=' in text, text
    # every label line still parses: name{k="v",...} value
    label = r'[a-z]+="(?:[^"\\\n]|\\.)*"'
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(rf'[a-z_]+\{{{label}(?:,{label})*\}} \d+', line), line


def test_browsers_and_foreign_hosts_are_refused(proxy):
    st, body = proxy.api("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert st == 403 and body["error"].startswith("User agent not allowed")
    host, port = proxy.api_addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("POST", "/reset", headers={"Host": "rebind.example"})
    r = c.getresponse()  # DNS rebinding: the engine's Host check, answered in the API's JSON
    assert (r.status, r.getheader("Content-Type")) == (403, "application/json")
    raw = r.read()
    body = json.loads(raw)
    assert body["status"] == 403 and "DNS rebinding" in body["error"], body
    assert b"\n" not in raw.strip(), raw  # one line, as the API's own errors
    assert "--allow-host" not in body["error"]  # serve's option: the proxy has none


def test_cli_errors_exit_2_naming_the_fix(echo_up, tmp_path):
    def run(*args):
        return subprocess.run([LOOPKIT, "proxy", "--api", "127.0.0.1:0", *args], capture_output=True,
                              text=True, timeout=10)
    r = run(echo_up.addr, "--toxic", "latency,latncy=5")
    assert r.returncode == 2 and "latency has no attribute 'latncy'; it has latency jitter" in r.stderr
    r = run(echo_up.addr, "--toxic", "bogus")
    assert r.returncode == 2 and "unknown toxic type 'bogus'; the types are latency" in r.stderr
    r = run(echo_up.addr, "--preset", "5g")
    assert r.returncode == 2 and "the presets are gprs, edge, 3g" in r.stderr
    r = run("10.0.0.1:80")
    assert r.returncode == 2 and "add --allow-remote" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "a", "upstream": "127.0.0.1:1"},]')
    r = run("--config", str(bad))
    assert r.returncode == 2 and f"--config {bad}: line 1" in r.stderr
    r = subprocess.run([LOOPKIT, "proxy", "--api", "off"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "nothing to do" in r.stderr
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    r = run(f"127.0.0.1:{port}", echo_up.addr)
    assert r.returncode == 1 and r.stderr == (
        f"loopkit proxy: listen 127.0.0.1:{port}: port {port} on 127.0.0.1 is held by python3 "
        f"(pid {os.getpid()}); try 127.0.0.1:0 for any free port\n"), r.stderr
    # the API's port: the whole message, its fix uncut (it once ended "... for a fr")
    r = subprocess.run([LOOPKIT, "proxy", "127.0.0.1:1", "--api", f"127.0.0.1:{port}"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1 and r.stderr == (
        f"loopkit proxy: --api 127.0.0.1:{port}: port {port} on 127.0.0.1 is held by python3 "
        f"(pid {os.getpid()}); try --api 127.0.0.1:0 for any free port\n"), r.stderr
    # the bare --api port: the same address, the same message
    r = subprocess.run([LOOPKIT, "proxy", "127.0.0.1:1", "--api", str(port)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1 and r.stderr.endswith(
        f"is held by python3 (pid {os.getpid()}); try --api 127.0.0.1:0 for any free port\n"), r.stderr
    # a usage error is found before anything is bound: not hidden behind a busy port, nor
    # behind a busy API port
    r = run(f"127.0.0.1:{port}", echo_up.addr, "--toxic", "latency,latency=abc")
    assert (r.returncode, r.stderr) == (2, "loopkit proxy: --toxic latency,latency=abc: latency.latency: 'abc' "
                                           "is not a number\n")
    r = subprocess.run([LOOPKIT, "proxy", echo_up.addr, "--api", f"127.0.0.1:{port}", "--preset", "5g"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and r.stderr.startswith("loopkit proxy: --preset 5g: unknown"), r.stderr
    taken.close()
    # what a flag quotes back is escaped: a refused name cannot print a line of its own
    rule = "1 to 63 bytes of UTF-8, without '/', control characters or line separators"
    r = run(echo_up.addr, "--toxic", "latency:a\x1b[31m\nloopkit proxy: forged")
    assert (r.returncode, r.stderr) == (2, "loopkit proxy: --toxic latency:a\\x1b[31m\\x0aloopkit proxy: forged: "
                                           f"a toxic's name must be {rule}\n")
    r = run(echo_up.addr, "--name", "a\nb")
    assert (r.returncode, r.stderr) == (2, f"loopkit proxy: --name a\\x0ab: a proxy's name must be {rule}\n")
    many = [x for i in range(33) for x in ("--toxic", f"latency:t{i}")]
    fits = Proxy(echo_up.addr, *many[:-2])  # 32 fit
    try:
        st, toxics = fits.api("GET", "/proxies/proxy/toxics")
        assert (st, len(toxics)) == (200, 32)
    finally:
        assert fits.stop() == 0
    r = run(echo_up.addr, *many)
    assert (r.returncode, r.stderr) == (2, "loopkit proxy: at most 32 toxics on a proxy\n")
    r = run(echo_up.addr, "--preset", "3g", "--toxic", "latency")
    assert (r.returncode, r.stderr) == (2, "loopkit proxy: --toxic latency: a toxic named latency_downstream is "
                                           "already there (name this one TYPE:NAME, e.g. latency:extra,...)\n")
    for api, why in (("127.0.0.1:http", "the port: not a number"), ("[::1]", "want [IPv6]:PORT"),
                     ("10.0.0.1:8474", "10.0.0.1 is not a loopback address")):
        r = subprocess.run([LOOPKIT, "proxy", "127.0.0.1:1", "--api", api], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and r.stderr.startswith(f"loopkit proxy: --api {api}: {why}"), r.stderr


@measures
def test_preset_3g_latency_and_bandwidth(echo_up):
    from proxyutil import median
    import time
    p = Proxy(echo_up.addr, "--preset", "3g", "--seed", "3")
    try:
        s = p.connect()
        xs = []
        for _ in range(9):
            t = time.monotonic()
            s.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += s.recv(64)
            xs.append(time.monotonic() - t)
        assert 0.225 <= median(xs) <= 0.275, xs  # 250 ms round trip (comcast's 3G)
        s.close()
        st, body = p.api("GET", "/proxies/proxy")
        kinds = sorted((t["type"], t["stream"]) for t in body["toxics"])
        assert kinds == sorted([(k, d) for k in ("latency", "bandwidth", "loss") for d in ("upstream", "downstream")])
        bw = [t for t in body["toxics"] if t["type"] == "bandwidth"][0]
        assert bw["attributes"]["rate"] == 93  # 750 kbit/s in KB/s
    finally:
        p.stop()


def test_proxy_count_limit(proxy, echo_up):
    many = [{"name": f"p{i}", "upstream": echo_up.addr, "enabled": False} for i in range(255)]
    st, body = proxy.api("POST", "/populate", many)
    assert st == 201 and len(body["proxies"]) == 255  # with "proxy": 256, the limit
    st, body = proxy.api("POST", "/proxies", {"name": "one-more", "upstream": echo_up.addr})
    assert st == 400 and body["error"] == "at most 256 proxies"
    st, body = proxy.api("GET", "/proxies")
    assert st == 200 and len(body) == 256


def test_api_connection_limit(proxy):
    host, port = proxy.api_addr.rsplit(":", 1)
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(64)]
    extra = socket.create_connection((host, int(port)), timeout=5)
    assert extra.recv(100) == b""  # over API_MAX_CONNS: closed at once
    extra.close()
    for s in held:
        s.close()
    import time
    time.sleep(0.3)
    assert proxy.api("GET", "/version")[0] == 200


def test_config_size_limit(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + " " * (1024 * 1024) + "]")
    r = subprocess.run([LOOPKIT, "proxy", "--api", "off", "--config", str(big)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "larger than 1048576 bytes" in r.stderr


def echo_once(p, name, data=b"hello"):
    """One connection through proxy name, closed by both ends before it returns: a toxic
    added later must not find it open (toxics act on open connections too)."""
    with p.connect(name) as s:
        s.sendall(data)
        assert recv_exactly(s, len(data)) == data
    gauge = f'loopkit_proxy_connections_open{{proxy="{name}"}} 0\n'
    deadline = time.monotonic() + 10
    while gauge not in p.api("GET", "/metrics")[1]:
        assert time.monotonic() < deadline, f"the proxy kept the pair of {name} open"
        time.sleep(0.01)


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        assert b, f"the connection ended after {len(got)} of {n} bytes"
        got += b
    return got


def drive_toxics_and_proxies(p, up):
    """Toxics removed (one name twice, one by /reset) and a proxy deleted twice: what the
    summary at exit must still count."""
    lat = {"type": "latency", "name": "lat", "attributes": {"latency": 1}}
    for conns in (2, 1):  # "lat" twice: one tally of 3
        assert p.api("POST", "/proxies/proxy/toxics", lat)[0] == 200
        for _ in range(conns):
            echo_once(p, "proxy")
        assert p.api("DELETE", "/proxies/proxy/toxics/lat")[0] == 204
    slow = {"type": "bandwidth", "name": "slow", "stream": "upstream", "attributes": {"rate": 1000}}
    assert p.api("POST", "/proxies/proxy/toxics", slow)[0] == 200
    echo_once(p, "proxy")
    assert p.api("POST", "/reset")[0] == 204
    for _ in range(2):  # "gone" made and deleted twice: one entry, its totals added up
        st, body = p.api("POST", "/proxies", {"name": "gone", "listen": "127.0.0.1:0", "upstream": up})
        assert st == 201, body
        p.proxies["gone"] = body["listen"]
        echo_once(p, "gone", b"12345")
        assert p.api("DELETE", "/proxies/gone")[0] == 204
    return body["listen"]


def test_the_summary_keeps_removed_toxics_and_deleted_proxies(proxies, echo_up):
    """toxiproxy's way (add a toxic, run the test, remove it or /reset) used to leave the
    summary at exit with no toxics at all, and a deleted proxy left no trace."""
    p = proxies(echo_up.addr, "--json")
    gone_listen = drive_toxics_and_proxies(p, echo_up.addr)
    assert p.stop() == 0
    doc = json.loads(p.rest)
    assert doc == {"proxies": [
        {"name": "proxy", "listen": p.proxies["proxy"], "upstream": echo_up.addr, "deleted": False,
         "connections": 4, "refused": 0, "bytes_up": 20, "bytes_down": 20, "toxics": [
             {"name": "lat", "type": "latency", "stream": "downstream", "applied": 3, "removed": True},
             {"name": "slow", "type": "bandwidth", "stream": "upstream", "applied": 1, "removed": True}]},
        {"name": "gone", "listen": gone_listen, "upstream": echo_up.addr, "deleted": True,
         "connections": 2, "refused": 0, "bytes_up": 10, "bytes_down": 10, "toxics": []}],
        "deleted_unlisted": 0}


def test_the_text_summary_marks_removed_toxics_and_deleted_proxies(proxies, echo_up):
    p = proxies(echo_up.addr)
    drive_toxics_and_proxies(p, echo_up.addr)
    assert p.stop() == 0
    assert p.rest == ("proxy: 4 connections (0 refused), 20 bytes up, 20 bytes down\n"
                      "  toxic lat (latency, downstream, removed): applied 3 times\n"
                      "  toxic slow (bandwidth, upstream, removed): applied 1 time\n"
                      "gone (deleted): 2 connections (0 refused), 10 bytes up, 10 bytes down\n")


def test_the_summary_of_removed_toxics_and_deleted_proxies_is_bounded(proxies, echo_up):
    """An API client that adds and removes toxics, or makes and deletes proxies, under new
    names without end: the summary keeps 32 toxic names per proxy (the rest add up per
    type and stream, name null) and 256 deleted proxies (the rest are counted)."""
    p = proxies(echo_up.addr, "--json")
    for i in range(40):
        t = {"type": "latency", "name": f"t{i}", "attributes": {"latency": 1}}
        assert p.api("POST", "/proxies/proxy/toxics", t)[0] == 200
        if i in (5, 35, 36):
            echo_once(p, "proxy")
        assert p.api("DELETE", f"/proxies/proxy/toxics/t{i}")[0] == 204
    for i in range(258):
        st, body = p.api("POST", "/proxies", {"name": f"d{i}", "listen": "127.0.0.1:0", "upstream": echo_up.addr})
        assert st == 201, body
        assert p.api("DELETE", f"/proxies/d{i}")[0] == 204
    assert p.stop() == 0
    doc = json.loads(p.rest)
    px = doc["proxies"][0]
    assert px["name"] == "proxy" and px["connections"] == 3
    want = [{"name": f"t{i}", "type": "latency", "stream": "downstream", "applied": int(i == 5), "removed": True}
            for i in range(32)]
    want.append({"name": None, "type": "latency", "stream": "downstream", "applied": 2, "removed": True})
    assert px["toxics"] == want
    assert [d["name"] for d in doc["proxies"][1:]] == [f"d{i}" for i in range(256)]
    assert all(d["deleted"] and d["connections"] == 0 for d in doc["proxies"][1:])
    assert doc["deleted_unlisted"] == 2
