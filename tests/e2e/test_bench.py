"""loopkit bench: counts checked against what real servers logged, the constant rate,
ephemeral ports with --sources, the documented JSON fields, SVG, usage errors."""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import free_port, LOOPKIT, hard_timeout_fixture

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
    doc = bench_json("http", s.url + "1k.bin", "-C", 8, "-d", 2, "-t", 2)
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
    doc = bench_json("http", s.url + "a.txt", "-C", 4, "-d", 1, "--no-keepalive")
    doc2 = bench_json("http", s.url + "a.txt", "-C", 4, "-d", 1, "--pipeline", 4)
    assert doc["requests"] > 100 and doc2["requests"] > 100
    logged = settled_count(s.stderr, '"GET /a.txt HTTP/1.1" 200 5')
    assert logged == doc["requests"] + doc2["requests"]




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
        doc = bench_json("http", f"http://127.0.0.1:{port}/f.txt", "-C", 4, "-d", 2)
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
    doc = bench_json("http", s.url + "i.html", "-R", 2000, "-d", 3, "-C", 10, "--svg", svg)
    check_fields(doc, "http")
    assert doc["rate"]["scheduled"] == 6000  # 3 s x 2000/s, whatever the server did
    assert doc["rate"]["reached"] is True and doc["sent"] >= 0.99 * 6000
    assert doc["requests"] == doc["sent"]
    cor, raw = doc["rate"]["corrected_latency_us"], doc["latency_us"]
    assert cor["count"] == raw["count"] == doc["requests"]
    assert cor["p50"] >= raw["p50"] * 0.99
    root_el = ET.parse(svg).getroot()
    assert root_el.tag.endswith("svg")
    assert len(root_el.findall(".//{http://www.w3.org/2000/svg}polyline")) == 2


def test_http_refused_target_is_named_at_once():
    """As wrk and ab: a target that refuses is named with the reason before the run, not
    counted as connect errors at full speed for the whole of -d (10 s here; the call's
    own timeout is 8 s)."""
    port = free_port()  # nobody listens there
    rc, out, err = bench("http", f"http://127.0.0.1:{port}/", "-d", 10, "-C", 2, timeout=8)
    assert rc == 1, (rc, out, err)
    assert out == "", out  # no run, no report
    assert err.strip() == (f"loopkit bench http: cannot connect to 127.0.0.1:{port}: Connection refused "
                           "(is a server listening there?)"), err


def test_http_target_that_never_accepts_is_named():
    """A listener whose accept queue is full never completes the handshake: the run
    says so after --timeout instead of reporting 'errors 0'."""
    import socket
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    held = []
    try:
        for _ in range(3):  # fill the queue (backlog 0 holds one)
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            held.append(c)
        rc, out, err = bench("http", f"http://127.0.0.1:{port}/", "-d", 10, "--timeout", "300ms", timeout=8)
    finally:
        for c in held:
            c.close()
        lst.close()
    assert rc == 1 and out == "", (rc, out, err)
    assert err.strip() == (f"loopkit bench http: cannot connect to 127.0.0.1:{port}: not accepted within "
                           "300 ms (--timeout); its accept queue may be full (loopkit scan tells)"), err


def test_http_server_that_is_not_http_is_named():
    """A server that answers something else than HTTP: the parse errors and the hint
    say so (not 'is a server listening there?')."""
    import socket
    import threading
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    port = lst.getsockname()[1]
    stop = threading.Event()

    def serve():
        lst.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = lst.accept()
            except OSError:
                continue
            try:
                c.settimeout(1)
                c.recv(4096)  # the request, then an answer in another protocol
                c.sendall(b"SSH-2.0-OpenSSH_9.2\r\nInvalid SSH identification string.\r\n")
            except OSError:
                pass
            c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        rc, out, err = bench("http", f"http://127.0.0.1:{port}/", "-d", "300ms", "-C", 1)
    finally:
        stop.set()
        th.join()
        lst.close()
    assert rc == 1, (rc, out, err)
    assert re.search(r"parse: [1-9]", out), out
    assert "no request completed (the answers could not be read: not an HTTP/1.x response)" in err, err


@pytest.mark.parametrize("url,msg", [
    ("http://127.0.0.1:1/a b", "URL has a space or control byte at offset 20: percent-encode it (%20)"),
    ("http://127.0.0.1:1/a\tb", "URL has a space or control byte at offset 20"),
    ("http://user:pw@127.0.0.1:1/", "URL has credentials (user@host)"),
    ("http://:1/", "URL has no host"),
])
def test_http_url_that_cannot_be_a_request_line_is_a_usage_error(url, msg):
    rc, out, err = bench("http", url, "-n", 1)
    assert rc == 2 and msg in err, (rc, err)


def test_http_fragment_is_not_sent_and_a_bare_query_gets_the_root(start):
    s = start()
    for url, target in [(s.url + "_/get?q=1#frag", "/_/get?q=1"),
                        (s.url.rstrip("/") + "?q=2#x", "/?q=2"),
                        (s.url + "_/get?q=\u00e9", "/_/get?q=%C3%A9")]:  # UTF-8, as a browser sends it
        rc, out, err = bench("http", url, "-n", 1)
        assert rc == 0, (rc, err)
        want = f'"GET {target} HTTP/1.1" 200'
        assert settled_count(s.stderr, want) == 1, (want, s.stderr()[-500:])


@pytest.mark.parametrize("args,msg", [
    (["http", "http://10.1.2.3/"], "--allow-remote"),
    (["http", "http://[2001:db8::1]:80/"], "--allow-remote"),
    (["http"], "which URL"),
    (["http", "https://127.0.0.1/"], "https"),
    (["http", "http://127.0.0.1/", "--pipeline", "2", "-R", "10"], "cannot be combined"),
    (["http", "http://127.0.0.1/", "-C", "0"], "-C 0"),
    (["tcp", "--bogus"], "unknown option"),
    (["rr", "-d", "0"], "-d 0"),
    (["rr", "-u", "-l", "65508"], "-l is 8 to 65507 bytes with -u"),
    (["rr", "-u", "-l", "1M"], "-l is 8 to 65507 bytes with -u"),
    (["rr", "-u", "-l", "7"], "-l is 8 to 65507 bytes with -u"),
    (["crr", "--sources", "99"], "--sources"),
    (["nosuchmode"], "unknown mode"),
])
def test_usage_errors_exit_2(args, msg):
    rc, out, err = bench(*args, timeout=10)
    assert rc == 2, (rc, out, err)
    assert msg in err, err


@pytest.mark.parametrize("kind", ["fifo-with-reader", "device", "empty", "directory"])
def test_an_svg_path_that_is_no_plain_file_is_refused_before_the_run(tmp_path, kind):
    """A FIFO with a reader passed an open-and-close check (which ended the reader) and
    then blocked the plot's write for good; a device or "" passed too."""
    reader = None
    if kind == "fifo-with-reader":
        path = tmp_path / "f"
        os.mkfifo(path)
        reader = subprocess.Popen(["cat", str(path)], stdout=subprocess.DEVNULL)
        why = "not a plain file"
    elif kind == "device":
        path, why = "/dev/full", "not a plain file"
    elif kind == "empty":
        path, why = "", "No such file or directory"
    else:
        path, why = tmp_path, "Is a directory"
    try:
        rc, out, err = bench("tcp", "-d", 10, "--svg", str(path), timeout=8)
    finally:
        if reader:
            reader.kill()
            reader.wait()
    assert rc == 1 and out == "", (rc, out, err)
    assert err.strip() == f"loopkit bench tcp: --svg {path}: {why}", err


@pytest.mark.parametrize("mode", [["tcp"], ["rr"], ["crr"], ["http", "http://127.0.0.1:1/"]])
def test_an_svg_that_cannot_be_written_fails_before_the_run(tmp_path, mode):
    """As scan's --nmap-xml: the plot's path is checked first (it was found unwritable
    only after the whole run); -d 10 would outlast the call's own 8 s timeout."""
    rc, out, err = bench(*mode, "-d", 10, "--svg", str(tmp_path / "missing" / "x.svg"), timeout=8)
    assert rc == 1 and out == "", (rc, out, err)
    assert err.strip() == f"loopkit bench {mode[0]}: --svg {tmp_path}/missing/x.svg: No such file or directory", err


@pytest.mark.alone
def test_tcp_json_and_svg(tmp_path):
    svg = tmp_path / "tcp.svg"
    doc = bench_json("tcp", "-d", 1, "-P", 2, "--svg", svg)
    check_fields(doc, "tcp")
    assert doc["gbit_per_s"] > 0.1 and doc["streams"] == 2
    assert len(doc["intervals_gbit_per_s"]) == 1
    assert ET.parse(svg).getroot().tag.endswith("svg")


@pytest.mark.alone
def test_tcp_zerocopy_v6_human():
    rc, out, err = bench("tcp", "-d", 1, "--zerocopy", "-6", "-l", "64K")
    assert rc == 0, err
    assert "Gbit/s" in out and "[::1]" in out and "sendfile" in out


@pytest.mark.alone
@pytest.mark.parametrize("extra", [[], ["--udp"], ["-6", "-l", "1000"]])
def test_rr_json(extra, tmp_path):
    svg = tmp_path / "rr.svg"
    doc = bench_json("rr", "-d", 1, *extra, "--svg", svg)
    check_fields(doc, "rr")
    lat = doc["latency_us"]
    assert doc["round_trips"] > 100 and lat["count"] == doc["round_trips"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert ET.parse(svg).getroot().tag.endswith("svg")


@pytest.mark.alone
def test_crr_json_and_svg(tmp_path):
    svg = tmp_path / "crr.svg"
    doc = bench_json("crr", "-d", 1, "-C", 2, "-n", 500, "--svg", svg)
    check_fields(doc, "crr")
    assert doc["connections"] == 500 and doc["failed"] == 0
    assert ET.parse(svg).getroot().tag.endswith("svg")


NETNS_OK = shutil.which("unshare") and shutil.which("ip") and subprocess.run(
    ["unshare", "-rn", "true"], capture_output=True).returncode == 0


def in_netns(cmd, timeout=30, tw_reuse=None):
    """Runs cmd in a new network namespace with lo up and 500 ephemeral ports (and
    net.ipv4.tcp_tw_reuse as given; a new namespace starts at 2, loopback only)."""
    script = ('ip link set lo up && echo "40000 40499" > /proc/sys/net/ipv4/ip_local_port_range'
              + (f' && echo {tw_reuse} > /proc/sys/net/ipv4/tcp_tw_reuse' if tw_reuse is not None else '')
              + ' && exec "$@"')
    return subprocess.run(["unshare", "-rn", "sh", "-c", script, "sh", *map(str, cmd)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.alone
@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_crr_sources_pass_one_address_range():
    # 500 ephemeral ports per source address; 1500 connections need three addresses' worth.
    p = in_netns([LOOPKIT, "bench", "crr", "-C", 4, "-n", 1500, "-d", 20, "--sources", 4, "--json"])
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["connections"] == 1500
    assert doc["failed"] == 0 and "EADDRNOTAVAIL" not in doc["failures"], doc
    assert doc["time_wait"] >= 1500 - 10


@pytest.mark.alone
@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_crr_one_source_runs_out_of_ports():
    # The control: without --sources the same run hits EADDRNOTAVAIL and says so.
    p = in_netns([LOOPKIT, "bench", "crr", "-C", 4, "-n", 1000, "-d", 1])
    assert p.returncode == 1, p.stdout + p.stderr
    assert "EADDRNOTAVAIL" in p.stdout and "--sources" in p.stdout


# ---- statuses the run did not expect (issue 12: "errors 0" and exit 0 against a 404) ----

def test_http_404_and_403_fail_unless_ok_status(start, root):
    (root / "a.txt").write_text("hi")
    s = start("--quiet")
    rc, out, err = bench("http", s.url + "missing", "-d", 1, "-C", 2)
    assert rc == 1, (rc, out, err)
    assert re.search(r"^  statuses +404: \d+$", out, re.M), out
    assert re.search(r"^  unexpected +\d+ responses with a status outside --ok-status 200-299", out,
                     re.M), out
    rc, out, err = bench("http", s.url + "missing", "-d", 1, "-C", 2, "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["requests"] > 0, (rc, err)
    assert doc["status"] == {"404": doc["requests"]}
    assert doc["unexpected_status"] == doc["requests"] and doc["ok_status"] == "200-299"
    assert all(v == 0 for v in doc["errors"].values()), doc["errors"]
    # allowed: the same run passes
    doc = bench_json("http", s.url + "missing", "-d", 1, "-C", 2, "--ok-status", "404")
    assert doc["unexpected_status"] == 0 and doc["ok_status"] == "404"
    forbidden = s.url + "_/status/403"
    rc, out, err = bench("http", forbidden, "-d", 1, "-C", 2, "--ok-status", "200-399", "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["unexpected_status"] == doc["status"]["403"] == doc["requests"] > 0
    doc = bench_json("http", forbidden, "-d", 1, "-C", 2, "--ok-status", "200,403")
    assert doc["unexpected_status"] == 0 and doc["status"] == {"403": doc["requests"]}
    doc = bench_json("http", s.url + "a.txt", "-d", 1, "-C", 1)
    assert doc["unexpected_status"] == 0 and doc["status"] == {"200": doc["requests"]}


@pytest.mark.parametrize("value,msg", [
    ("200,201,202,203,204,205,206,207,208", "at most 8 ranges"),  # BENCH_HTTP_MAX_OK
    ("abc", "--ok-status abc"),
    ("600", "599"),
    ("200-", "want N or A-B within 100-599"),
    ("404,", "empty"),
])
def test_ok_status_bad_values_exit_2(value, msg):
    rc, out, err = bench("http", "http://127.0.0.1:1/", "--ok-status", value, timeout=10)
    assert rc == 2, (rc, out, err)
    assert msg in err, err


def test_ok_status_limit_is_exactly_8():
    eight = ",".join(f"{100 + 2 * i}" for i in range(8))
    rc, out, err = bench("http", "http://127.0.0.1:1/", "--ok-status", eight, "-d", "50ms", timeout=10)
    assert rc == 1 and "unknown option" not in err and "ranges" not in err, (rc, err)
    assert "cannot connect to 127.0.0.1:1: Connection refused" in err, err


# ---- pacing: the client's own timer is not the server's latency ----

@pytest.mark.xdist_group("serial")
def test_constant_rate_corrected_equals_raw_on_an_idle_server(start, root):
    (root / "i.html").write_text("<p>hi</p>")
    s = start("--quiet")
    doc = bench_json("http", s.url + "i.html", "-R", 200, "-d", 3)
    check_fields(doc, "http")
    raw, cor = doc["latency_us"], doc["rate"]["corrected_latency_us"]
    # 3 s x 200/s; each of the 10 connections may miss its last request when the
    # server (on a loaded machine) answers its previous one after the end
    assert doc["rate"]["scheduled"] == 600 and 590 <= doc["sent"] <= 600, doc
    assert cor["count"] == raw["count"] == doc["rate"]["client_lag_us"]["count"] == doc["requests"]
    assert cor["p50"] <= 1.2 * raw["p50"], (cor, raw)
    assert cor["p50"] >= raw["p50"] * 0.99


def test_constant_rate_a_paused_client_is_not_the_servers_latency(start, root):
    """The client stopped (SIGSTOP) for 0.3 s mid-run: the requests scheduled meanwhile go
    out late, each when the one before is answered. That wait is the client's: it shows
    in client_lag, and the corrected latency keeps the server's time (a new-user pass
    measured corrected p99 170 ms against a raw max of 4 ms)."""
    (root / "i.html").write_text("<p>hi</p>")
    s = start("--quiet")
    p = subprocess.Popen([LOOPKIT, "bench", "http", s.url + "i.html", "-R", "1000", "-C", "10", "-d", "3",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.2)
        p.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    doc = json.loads(out)
    raw, cor, lag = doc["latency_us"], doc["rate"]["corrected_latency_us"], doc["rate"]["client_lag_us"]
    assert lag["max"] >= 250000, lag  # the pause is the client's own lag
    # on the ideal timeline a request waits for the server only: with answers faster than
    # a connection's 10 ms interval, nothing queues and corrected is raw
    if raw["max"] < 10000:
        assert cor["max"] <= raw["max"] * 1.02 + 1, (cor, raw)
    assert cor["p99"] < 50000 and cor["p99"] <= 1.05 * raw["p99"] + 1000, (cor, raw)


def test_constant_rate_counts_what_the_server_held(start):
    # The control: one connection, due every 20 ms, against a server that takes 50 ms.
    # Every request goes late because the server held the connection: the corrected
    # latency counts from the due time and grows with the backlog; the raw one stays ~50 ms.
    s = start("--quiet")
    doc = bench_json("http", s.url + "_/delay/0.05", "-R", 50, "-C", 1, "-d", 1, "--timeout", 5)
    raw, cor = doc["latency_us"], doc["rate"]["corrected_latency_us"]
    assert 50000 <= raw["p50"] < 150000, raw
    assert cor["max"] > raw["max"] + 200000, (cor, raw)
    assert doc["rate"]["reached"] is False and doc["warnings"], doc


# ---- TIME_WAIT after crr ----

@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
def test_crr_time_wait_warning_with_numbers():
    # 500 ephemeral ports x 4 source addresses: 1500 connections leave 75% of them in TIME_WAIT.
    p = in_netns([LOOPKIT, "bench", "crr", "-C", 4, "-n", 1500, "-d", 20, "--sources", 4, "--json"], tw_reuse=0)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    check_fields(doc, "crr")
    tw = doc["time_wait_target"]
    assert 1500 - 10 <= tw <= 1500 and doc["time_wait"] >= tw
    assert doc["ephemeral_ports"] == 2000
    assert doc["time_wait_percent"] == pytest.approx(100 * tw / 2000, abs=0.1)
    assert len(doc["warnings"]) == 2, doc["warnings"]
    numbers, advice = doc["warnings"]
    assert f"{tw} sockets to {doc['target']} are in TIME_WAIT" in numbers
    assert "of the 2000 ephemeral ports" in numbers and "40000-40499 on 4 source addresses" in numbers
    assert "--sources N" in advice and "keep-alive" in advice and "tcp_tw_reuse" in advice
    assert f"tcp_tw_reuse (here {doc['tcp_tw_reuse']}" in advice
    # the human report says the same
    p = in_netns([LOOPKIT, "bench", "crr", "-C", 4, "-n", 300, "-d", 20], tw_reuse=0)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^  warning: +\d+ sockets to 127\.0\.0\.1:\d+ are in TIME_WAIT", p.stdout, re.M), p.stdout
    assert "tcp_tw_reuse" in p.stdout


@pytest.mark.skipif(not NETNS_OK, reason="no user network namespaces here")
@pytest.mark.parametrize("n,tw_reuse,warned", [
    (20, 0, False), (100, 0, True),  # 4% and 20% of 500: BENCH_CRR_TW_WARN 10%
    (100, 2, False),  # with tcp_tw_reuse (2: loopback) connect() takes TIME_WAIT ports over: no warning
])
def test_crr_time_wait_warning_threshold(n, tw_reuse, warned):
    p = in_netns([LOOPKIT, "bench", "crr", "-n", n, "-d", 20, "--json"], tw_reuse=tw_reuse)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["ephemeral_ports"] == 500 and doc["time_wait_target"] <= n and doc["tcp_tw_reuse"] == tw_reuse
    assert bool(doc["warnings"]) is warned, doc


# ---- plots ----

SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_texts(path):
    root_el = ET.parse(path).getroot()
    width = float(root_el.get("width"))
    out = []
    for t in root_el.iter(SVG_NS + "text"):
        text = "".join(t.itertext())
        if t.get("transform"):  # the rotated axis title
            continue
        size = float(t.get("font-size", root_el.get("font-size", "12")))
        out.append((text, float(t.get("x")), float(t.get("y")), t.get("text-anchor", "start"), size))
    return root_el, width, out


def assert_texts_fit(width, texts):
    for text, x, _, anchor, size in texts:
        w = len(text) * size * 0.6  # sans-serif characters are narrower than 0.6 em
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        assert 0 <= left and left + w <= width, f"clipped: {text!r} spans {left:.0f}..{left + w:.0f} of {width}"


def lat_us(label):
    num, unit = label.split()
    return float(num) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def test_percentile_svg_log_scale_title_and_labels(start, root, tmp_path):
    (root / "i.html").write_text("<p>hi</p>")
    s = start("--quiet")
    svg = tmp_path / "lat.svg"
    doc = bench_json("http", s.url + "i.html", "-R", 500, "-d", 1, "-C", 5, "--svg", svg)
    root_el, width, texts = svg_texts(svg)
    assert_texts_fit(width, texts)
    title = " ".join(t[0] for t in texts if t[2] < 50)
    for part in (doc["target"], "5 connections", "constant rate 500 req/s", "1.0 s"):
        assert part in title, (part, title)
    # the latency axis is logarithmic: tick positions are linear in log(value)
    ticks = sorted((y, lat_us(t)) for t, x, y, anchor, _ in texts if anchor == "end")
    vals = [v for _, v in ticks]
    assert len(ticks) >= 3 and max(vals) / min(vals) >= 10, ticks
    (y0, v0), (y1, v1) = ticks[0], ticks[-1]
    per_decade = (y1 - y0) / math.log10(v1 / v0)
    for y, v in ticks:
        assert abs((y - y0) - per_decade * math.log10(v / v0)) < 1.5, (y, v, ticks)
    assert len(root_el.findall(f".//{SVG_NS}polyline")) == 2


def test_rr_and_crr_svg_titles(tmp_path):
    svg = tmp_path / "rr.svg"
    bench_json("rr", "-d", "300ms", "--svg", svg)
    _, width, texts = svg_texts(svg)
    assert_texts_fit(width, texts)
    assert "bench rr TCP 127.0.0.1: 64-byte messages, one in flight, 0.3 s" in [t[0] for t in texts]
    svg = tmp_path / "crr.svg"
    doc = bench_json("crr", "-n", 200, "-C", 2, "--svg", svg)
    _, width, texts = svg_texts(svg)
    assert_texts_fit(width, texts)
    assert any(t[0].startswith(f"bench crr {doc['target']}: 2 connections in flight") for t in texts)


@pytest.mark.xdist_group("serial")
def test_tcp_svg_of_one_second_draws_its_samples(tmp_path):
    svg = tmp_path / "tcp.svg"
    doc = bench_json("tcp", "-d", 1, "--svg", svg)
    root_el, width, texts = svg_texts(svg)
    assert_texts_fit(width, texts)
    lines = root_el.findall(f".//{SVG_NS}polyline")
    assert len(lines) == 1
    pts = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    xs = sorted({x for x, _ in pts})
    assert len(xs) >= 6, pts  # a step per 100 ms sample: 10 unless the machine stalled us
    plot_w = xs[-1] - xs[0]
    assert plot_w > 0.8 * (width - 120), xs
    assert len({y for _, y in pts}) >= 2 or doc["gbit_per_s"] == 0


def test_tcp_svg_of_a_too_short_run_says_why(tmp_path):
    svg = tmp_path / "tcp.svg"
    bench_json("tcp", "-d", "50ms", "--svg", svg)
    root_el, _, texts = svg_texts(svg)
    assert not root_el.findall(f".//{SVG_NS}polyline")
    assert any("shorter than one sample" in t[0] for t in texts), texts


# ---- interrupted runs ----

def interrupt_after(args, secs=1.0):
    p = subprocess.Popen([LOOPKIT, "bench", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(secs)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    return p.returncode, out, err


@pytest.mark.parametrize("mode", ["tcp", "rr", "crr"])
def test_interrupted_run_json(mode):
    rc, out, err = interrupt_after([mode, "-d", 30, "--json"])
    assert rc == 0, (rc, err)
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["duration_s"] == 30
    assert 0.5 < doc["elapsed_s"] < 10, doc["elapsed_s"]


def test_interrupted_http_human_and_json(start, root):
    (root / "a.txt").write_text("hi")
    s = start("--quiet")
    rc, out, err = interrupt_after(["http", s.url + "a.txt", "-d", 30, "-C", 2])
    assert rc == 0, (rc, out, err)
    m = re.search(r"^bench http .*, INTERRUPTED after ([\d.]+) s of 30\.0 s$", out, re.M)
    assert m, out
    el = float(m.group(1))
    assert 0.5 < el < 10
    assert re.search(rf"^  requests +\d+ in {re.escape(m.group(1))} s: ", out, re.M), out
    rc, out, err = interrupt_after(["http", s.url + "a.txt", "-d", 30, "-C", 2, "--json"])
    doc = json.loads(out)
    assert rc == 0 and doc["interrupted"] is True and 0.5 < doc["elapsed_s"] < 10
    assert doc["requests_per_s"] == pytest.approx(doc["requests"] / doc["elapsed_s"], rel=0.01)
    # an uninterrupted run says so too
    doc = bench_json("http", s.url + "a.txt", "-d", "300ms", "-C", 1)
    assert doc["interrupted"] is False


def test_body_file_limit_is_64_mib(start, root, tmp_path):
    # BENCH_HTTP_MAX_BODY: a file one byte larger is refused before any load.
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)
    rc, out, err = bench("http", "http://127.0.0.1:1/", "-m", "PUT", "--body", big, timeout=10)
    assert rc == 2 and "--body" in err and "larger than 64 MiB" in err, (rc, err)
    ok = tmp_path / "ok.bin"
    ok.write_bytes(b"x" * 100)
    s = start("--quiet", "--write")
    doc = bench_json("http", s.url + "up.bin", "-m", "PUT", "--body", ok, "-d", "300ms", "-C", 1,
                     "--ok-status", "200-204")
    assert doc["requests"] > 0 and doc["unexpected_status"] == 0, doc["status"]
    assert (root / "up.bin").read_bytes() == b"x" * 100


@pytest.mark.alone
def test_http_total_sends_exactly_n_requests(start, root):
    """-n N (ab's request count, crr's -n/--total): exactly N requests reach the server,
    pipelined batches included, and the run ends with the last one, long before -d."""
    (root / "n.txt").write_text("n")
    s = start()
    doc = bench_json("http", s.url + "n.txt", "-n", 500, "-C", 8, "-t", 2, "--pipeline", 3,
                     "-d", 20)
    assert doc["total"] == 500 and doc["requests"] == 500 and doc["sent"] == 500, doc
    assert doc["status"] == {"200": 500} and doc["unfinished"] == 0, doc
    assert doc["elapsed_s"] < 10, doc["elapsed_s"]
    assert doc["latency_us"]["count"] == 500, doc["latency_us"]
    logged = settled_count(s.stderr, '"GET /n.txt HTTP/1.1" 200 1')
    assert logged == 500, logged
    rc, out, err = bench("http", s.url + "n.txt", "--total", 3)
    assert rc == 0 and "at most 3 requests," in out and re.search(r"requests\s+3 in ", out), (rc, err, out)


def test_http_no_completed_request_prints_no_samples(start):
    """Every request timed out: no latency table of zeros, "no samples" (JSON null)."""
    s = start()
    args = ["http", s.url + "_/delay/3", "-d", 1, "--timeout", 1, "-C", 2]
    rc, out, err = bench(*args)
    assert rc == 1 and "no request completed" in err, (rc, err)
    assert re.search(r"^\s+latency\s+no samples$", out, re.M), out
    assert " us" not in out, out
    rc, out, err = bench(*args, "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["requests"] == 0 and doc["errors"]["timeout"] >= 2, doc
    assert doc["latency_us"] is None, doc["latency_us"]
