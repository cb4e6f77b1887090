"""loopkit bench: counts checked against what real servers logged, the constant rate,
ephemeral ports with --sources, the documented JSON fields, SVG, usage errors."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import LOOPKIT, hard_timeout_fixture

_hard_timeout = hard_timeout_fixture(40)

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "bench.md")


def bench(*args, timeout=30):
    p = subprocess.run([LOOPKIT, "bench", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def bench_json(*args, timeout=30):
    rc, out, err = bench(*args, "--json", timeout=timeout)
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    return json.loads(out)


def settled_count(read, pattern, timeout=5):
    """Counts lines matching pattern in read() until the count stops changing."""
    last, stable = -1, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = sum(1 for ln in read().splitlines() if pattern in ln)
        stable = stable + 1 if n == last else 0
        if stable >= 3:
            return n
        last = n
        time.sleep(0.1)
    return last


def doc_json_fields(mode):
    """Dotted JSON field names from the 'JSON fields' table of a mode's section."""
    text = open(DOCS).read()
    sec = text.split(f"## `loopkit bench {mode}")[1].split("\n## ")[0]
    table = sec.split("JSON fields:")[1]
    return re.findall(r"^\| `([a-z_0-9.]+)`", table, re.M)


def has_path(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


def check_fields(doc, mode):
    fields = doc_json_fields(mode)
    assert len(fields) >= 10, fields
    missing = [f for f in fields if not has_path(doc, f) and not (
        f.startswith("rate.") and doc.get("rate") is None)]
    assert not missing, f"{mode}: documented but absent: {missing}"
    assert doc["mode"] == mode


@pytest.mark.alone
def test_http_count_equals_loopkit_serve_log(start, root):
    (root / "1k.bin").write_bytes(b"k" * 1024)
    s = start()  # default access log: one line per request on stderr
    doc = bench_json("http", s.url + "1k.bin", "-c", 8, "-d", 2, "-t", 2)
    check_fields(doc, "http")
    assert doc["requests"] > 1000
    assert doc["status"] == {"200": doc["requests"]}
    assert all(v == 0 for v in doc["errors"].values()), doc["errors"]
    assert doc["unfinished"] == 0 and doc["sent"] == doc["requests"]
    logged = settled_count(s.stderr, '"GET /1k.bin HTTP/1.1" 200 1024')
    assert logged == doc["requests"], (logged, doc["requests"])


@pytest.mark.alone
def test_http_count_no_keepalive_and_pipeline(start, root):
    (root / "a.txt").write_text("hello")
    s = start()
    doc = bench_json("http", s.url + "a.txt", "-c", 4, "-d", 1, "--no-keepalive")
    doc2 = bench_json("http", s.url + "a.txt", "-c", 4, "-d", 1, "--pipeline", 4)
    assert doc["requests"] > 100 and doc2["requests"] > 100
    logged = settled_count(s.stderr, '"GET /a.txt HTTP/1.1" 200 5')
    assert logged == doc["requests"] + doc2["requests"]


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


@pytest.mark.alone
def test_http_count_equals_python_http_server_log(root, tmp_path):
    (root / "f.txt").write_text("x" * 100)
    port = free_port()
    errf = open(tmp_path / "py.err", "w+")
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "-d", str(root)], stdout=subprocess.DEVNULL, stderr=errf)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "python http.server did not start"
                time.sleep(0.05)
        doc = bench_json("http", f"http://127.0.0.1:{port}/f.txt", "-c", 4, "-d", 2)
        assert doc["requests"] > 50
        assert all(v == 0 for v in doc["errors"].values()), doc["errors"]

        def read():
            errf.flush()
            return open(tmp_path / "py.err").read()

        logged = settled_count(read, '"GET /f.txt HTTP/1.')
        assert logged == doc["requests"], (logged, doc["requests"])
    finally:
        p.terminate()
        p.wait(10)
        errf.close()


@pytest.mark.alone
def test_http_constant_rate(start, root, tmp_path):
    (root / "i.html").write_text("<p>hi</p>")
    s = start("--quiet")
    svg = tmp_path / "lat.svg"
    doc = bench_json("http", s.url + "i.html", "-R", 2000, "-d", 3, "-c", 10, "--svg", svg)
    check_fields(doc, "http")
    assert abs(doc["requests"] - 6000) <= 300, doc["requests"]
    assert doc["rate"]["reached"] is True
    assert doc["rate"]["scheduled"] == doc["sent"]
    cor, raw = doc["rate"]["corrected_latency_us"], doc["latency_us"]
    assert cor["count"] == raw["count"] == doc["requests"]
    assert cor["p50"] >= raw["p50"] * 0.99
    root_el = ET.parse(svg).getroot()
    assert root_el.tag.endswith("svg")
    assert len(root_el.findall(".//{http://www.w3.org/2000/svg}polyline")) == 2


def test_http_human_report_and_refused_target():
    port = free_port()  # nobody listens there
    rc, out, err = bench("http", f"http://127.0.0.1:{port}/", "-d", 1, "-c", 2)
    assert rc == 1, (rc, out, err)
    assert "errors" in out and "connect" in out
    assert "no request completed" in err


@pytest.mark.parametrize("args,msg", [
    (["http", "http://10.1.2.3/"], "--allow-remote"),
    (["http", "http://[2001:db8::1]:80/"], "--allow-remote"),
    (["http"], "which URL"),
    (["http", "https://127.0.0.1/"], "https"),
    (["http", "http://127.0.0.1/", "--pipeline", "2", "-R", "10"], "cannot be combined"),
    (["http", "http://127.0.0.1/", "-c", "0"], "-c"),
    (["tcp", "--bogus"], "unknown option"),
    (["rr", "-t", "0"], "-t"),
    (["crr", "--sources", "99"], "--sources"),
    (["nosuchmode"], "unknown mode"),
])
def test_usage_errors_exit_2(args, msg):
    rc, out, err = bench(*args, timeout=10)
    assert rc == 2, (rc, out, err)
    assert msg in err, err


@pytest.mark.alone
def test_tcp_json_and_svg(tmp_path):
    svg = tmp_path / "tcp.svg"
    doc = bench_json("tcp", "-t", 1, "-P", 2, "--svg", svg)
    check_fields(doc, "tcp")
    assert doc["gbit_per_s"] > 0.1 and doc["streams"] == 2
    assert len(doc["intervals_gbit_per_s"]) == 1
    assert ET.parse(svg).getroot().tag.endswith("svg")


@pytest.mark.alone
def test_tcp_zerocopy_v6_human():
    rc, out, err = bench("tcp", "-t", 1, "--zerocopy", "-6", "-l", "64K")
    assert rc == 0, err
    assert "Gbit/s" in out and "[::1]" in out and "sendfile" in out


@pytest.mark.alone
@pytest.mark.parametrize("extra", [[], ["--udp"], ["-6", "-l", "1000"]])
def test_rr_json(extra, tmp_path):
    svg = tmp_path / "rr.svg"
    doc = bench_json("rr", "-t", 1, *extra, "--svg", svg)
    check_fields(doc, "rr")
    lat = doc["latency_us"]
    assert doc["round_trips"] > 100 and lat["count"] == doc["round_trips"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert ET.parse(svg).getroot().tag.endswith("svg")


@pytest.mark.alone
def test_crr_json_and_svg(tmp_path):
    svg = tmp_path / "crr.svg"
    doc = bench_json("crr", "-t", 1, "-c", 2, "-n", 500, "--svg", svg)
    check_fields(doc, "crr")
    assert doc["connections"] == 500 and doc["failed"] == 0
    assert ET.parse(svg).getroot().tag.endswith("svg")


NETNS_OK = shutil.which("unshare") and shutil.which("ip") and subprocess.run(
    ["unshare", "-rn", "true"], capture_output=True).returncode == 0


def in_netns(cmd, timeout=30):
    """Runs cmd in a new network namespace with lo up and 500 ephemeral ports."""
    script = ('ip link set lo up && echo "40000 40499" > /proc/sys/net/ipv4/ip_local_port_range'
              ' && exec "$@"')
    return subprocess.run(["unshare", "-rn", "sh", "-c", script, "sh", *map(str, cmd)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.alone
@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_crr_sources_pass_one_address_range():
    # 500 ephemeral ports per source address; 1500 connections need three addresses' worth.
    p = in_netns([LOOPKIT, "bench", "crr", "-c", 4, "-n", 1500, "-t", 20, "--sources", 4, "--json"])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["connections"] == 1500
    assert doc["failed"] == 0 and "EADDRNOTAVAIL" not in doc["failures"], doc
    assert doc["time_wait"] >= 1500 - 10


@pytest.mark.alone
@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_crr_one_source_runs_out_of_ports():
    # The control: without --sources the same run hits EADDRNOTAVAIL and says so.
    p = in_netns([LOOPKIT, "bench", "crr", "-c", 4, "-n", 1000, "-t", 1])
    assert p.returncode == 1, p.stdout + p.stderr
    assert "EADDRNOTAVAIL" in p.stdout and "--sources" in p.stdout
