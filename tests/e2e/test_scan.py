"""loopkit scan (issue 14): a connect scan of loopback with services and owners.

The lab (scanlab.py) starts real services from Debian on free loopback ports. The scan
must find each with the right service and owning process; the kernel's own listener list
(`ss -ltn`) is the cross-check of the open set over all 65,535 ports; `nmap -sT -sV` on the
lab's ports is the reference (same open set, service names compared and printed), and the
two XML files, nmap's and ours, are read by the same Python reader."""
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import LOOPKIT, hard_timeout_fixture, sanitizer_build
from scanlab import lab_fixture, loopkit

_hard_timeout = hard_timeout_fixture(300)

# What the scan must say of each lab service: (service, product) and the owner's comm.
EXPECT = {
    "redis": ("redis", "Redis", "redis-server"),
    "memcached": ("memcached", "Memcached", "memcached"),
    "pyhttp": ("http", "Python http.server", "python3"),
    "nginx": ("http", "nginx", "nginx"),
    "nginxcors": ("http", "nginx", "nginx"),
    "vsftpd": ("ftp", "vsftpd", "vsftpd"),
    "wildcard": ("unknown", "", "python3"),
    "loopkit": ("http", "loopkit serve", "loopkit"),
    "lkcors": ("http", "loopkit serve", "loopkit"),
    "devtools": ("http", "Chrome DevTools", "chromium"),
}

# Where nmap's name may differ from ours, and why (printed with the comparison). For the
# others (Debian's own services) the two names must agree.
NMAP_DIFFERS = {
    "loopkit": "both are greeted as FTP (each waits for a banner); nmap names the port by the "
               "greeting (ftp or unknown by its probe file), loopkit scan knows loopkit serve, asks "
               "its HTTP side too and names it http (HTTP and FTP on one port)",
    "lkcors": "as above",
    "wildcard": "silent to every probe: no name to agree on",
    "devtools": "nmap's probe file has no rule for Chrome's DevTools endpoint",
}


lab = lab_fixture()


def scan_json(*args):
    p = loopkit("scan", *args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def private_scan(*args):
    """loopkit scan ARGS --json on a loopback of its own (loopkit isolate): a scan of
    every port of the shared 127.0.0.1 would connect to the servers of the tests running
    beside it and be counted there."""
    p = subprocess.run([LOOPKIT, "isolate", "--", LOOPKIT, "scan", *args, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def by_port(doc):
    return {p["port"]: p for p in doc["ports"]}


def test_scan_finds_every_service_with_its_owner(lab):
    doc = scan_json("-p", lab.port_list())
    ports = by_port(doc)
    assert set(ports) == set(lab.ports.values()), doc
    for name, port in lab.ports.items():
        p = ports[port]
        service, product, comm = EXPECT[name]
        assert (p["state"], p["service"], p["product"]) == ("open", service, product), (name, p)
        assert p["owner"] is not None and p["owner"]["pid"] == lab.pids[name], (name, p)
        assert p["owner"]["comm"] == comm, (name, p)
        assert p["exposed"] == (name == "wildcard"), (name, p)
    assert ports[lab.ports["vsftpd"]]["version"] == "3.0.3"
    assert ports[lab.ports["redis"]]["no_auth"] and ports[lab.ports["memcached"]]["no_auth"]
    assert ports[lab.ports["devtools"]]["no_auth"]
    assert not ports[lab.ports["nginx"]]["no_auth"]
    assert ports[lab.ports["wildcard"]]["bound"] == f"0.0.0.0:{lab.ports['wildcard']}"
    # the human table is the same result
    p = loopkit("scan", "-p", lab.port_list())
    assert p.returncode == 0, p.stderr
    for name, port in lab.ports.items():
        line = next(l for l in p.stdout.splitlines() if l.startswith(f"{port}/tcp"))
        assert EXPECT[name][0] in line and str(lab.pids[name]) in line, line
        assert ("EXPOSED" in line) == (name == "wildcard"), line


def ss_listeners():
    """Ports the kernel lists as TCP listeners reachable through 127.0.0.1."""
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        local = line.split()[3]
        addr, port = local.rsplit(":", 1)
        if addr in ("127.0.0.1", "0.0.0.0", "*", "[::]", "[::ffff:127.0.0.1]") or addr.startswith("127."):
            if addr.startswith("127.") and addr != "127.0.0.1":
                continue
            ports.add(int(port))
    return ports


@pytest.mark.alone  # the other worker's tests open short-lived listeners (PASV ports)
def test_all_ports_match_the_kernels_list(lab):
    """All 65,535 ports: the open set is the kernel's listener set. Other programs on
    this shared machine open and close listeners meanwhile, so ss is sampled before,
    during (every ~10 ms) and after the scan: a port ss lists before and after must be
    found, and a port found must have been listed by some sample."""
    before = ss_listeners()
    seen, stop = set(before), threading.Event()

    def sample():
        while not stop.is_set():
            seen.update(ss_listeners())
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        doc = scan_json("--no-service")
    finally:
        stop.set()
        t.join()
    after = ss_listeners()
    seen |= after
    found = {p["port"] for p in doc["ports"]}
    assert doc["tried"] == 65535
    assert doc["open"] + doc["closed"] + doc["filtered"] == 65535, doc
    assert before & after <= found, (sorted((before & after) - found), doc["scan_seconds"])
    assert found <= seen, sorted(found - seen)
    assert set(lab.ports.values()) <= found
    print(f"65535 ports in {doc['scan_seconds']:.3f} s, {len(found)} open")


def nmap_ports(path):
    """The one reader for both XML files: {port: (state, service name)}."""
    root = ET.parse(path).getroot()
    assert root.tag == "nmaprun"
    out = {}
    for port in root.iter("port"):
        state = port.find("state").get("state")
        svc = port.find("service")
        out[int(port.get("portid"))] = (state, svc.get("name") if svc is not None else "")
    return out


def test_nmap_reference_same_open_set_and_services(lab, tmp_path):
    ports = lab.port_list()
    ours, theirs = tmp_path / "loopkit.xml", tmp_path / "nmap.xml"
    t0 = time.monotonic()
    p = loopkit("scan", "-p", ports, "--nmap-xml", str(ours))
    t_ours = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    n = subprocess.run(["nmap", "-sT", "-sV", "-n", "-Pn", "-p", ports, "127.0.0.1", "-oX", str(theirs)],
                       capture_output=True, text=True, timeout=280)
    t_nmap = time.monotonic() - t0
    assert n.returncode == 0, n.stderr
    a, b = nmap_ports(ours), nmap_ports(theirs)
    assert {k for k, v in a.items() if v[0] == "open"} == {k for k, v in b.items() if v[0] == "open"}
    print(f"\nservice detection: loopkit scan {t_ours:.2f} s, nmap -sT -sV {t_nmap:.2f} s")
    print(f"{'lab service':12} {'port':>6}  {'loopkit':12} {'nmap':12}")
    for name, port in sorted(lab.ports.items(), key=lambda kv: kv[1]):
        print(f"{name:12} {port:>6}  {a[port][1]:12} {b[port][1]:12} {NMAP_DIFFERS.get(name, '')}")
    for name, port in lab.ports.items():
        if name not in NMAP_DIFFERS:
            assert b[port][1] == a[port][1], (name, a[port], b[port])
    # our XML names the owner where nmap's has none
    root = ET.parse(ours).getroot()
    owners = {int(x.get("portid")): x.find("owner").get("name") for x in root.iter("port")}
    assert owners[lab.ports["redis"]] == f"redis-server (pid {lab.pids['redis']})"


def test_ipv6_and_udp(tmp_path):
    """-6 scans ::1; --udp: an answering UDP port is open, a port with no socket is not listed."""
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind(("::1", 0))
    s6.listen(4)
    port6 = s6.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    uport = u.getsockname()[1]
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    cport = closed.getsockname()[1]
    closed.close()
    stop = threading.Event()

    def echo():
        u.settimeout(0.1)
        while not stop.is_set():
            try:
                data, addr = u.recvfrom(512)
                u.sendto(b"pong", addr)
            except socket.timeout:
                pass

    t = threading.Thread(target=echo)
    t.start()
    try:
        doc = scan_json("-6", "-p", str(port6), "--no-service")
        assert doc["family"] == "ipv6" and [p["port"] for p in doc["ports"]] == [port6]
        assert doc["ports"][0]["owner"]["pid"] == os.getpid()
        doc = scan_json("-p", str(port6), "--udp", f"{uport},{cport}", "--no-service")
        udp = {p["port"]: p["state"] for p in doc["ports"] if p["proto"] == "udp"}
        assert udp == {uport: "open"}, doc
        assert not [p for p in doc["ports"] if p["proto"] == "tcp"]  # port6 is v6-only
    finally:
        stop.set()
        t.join()
        u.close()
        s6.close()


def test_usage_errors_name_the_cause():
    cases = [
        (["scan", "10.1.2.3"], "not a loopback address"),
        (["scan", "example.com"], "not an IP address"),
        (["scan", "-p", "0-10"], "less than 1"),
        (["scan", "-p", "70000"], "more than 65535"),
        (["scan", "-p", "80,"], "ends with ','"),
        (["scan", "--udp", "1-2000"], "at most 1024 UDP ports"),
        (["scan", "--max-inflight", "0"], "--max-inflight"),
        (["scan", "-t", "0"], "-t 0: less than 1"),
        (["scan", "--threads", "257"], "--threads 257: more than 256"),
        (["scan", "-sV"], "service detection on by default"),
        (["scan", "-oX", "f.xml"], "--nmap-xml FILE"),
    ]
    for args, msg in cases:
        p = loopkit(*args)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert msg in p.stderr, (args, p.stderr)


def test_limits_inflight_one_and_big_greeting():
    """--max-inflight 1 (the smallest bound) still finds the listener; a server whose
    greeting is far over SCAN_READ_MAX (16 KiB) is read only that far and the scan ends
    at once (the answer is cut, not waited for)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    stop = threading.Event()
    sent = []

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            c.settimeout(2)
            try:
                c.sendall(b"X" * (1 << 20))
            except OSError as e:
                sent.append(e)
            finally:
                c.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        doc = scan_json("-p", f"{port - 5}-{port + 5}", "--max-inflight", "1", "--no-service")
        assert port in {p["port"] for p in doc["ports"]}
        t0 = time.monotonic()
        doc = scan_json("-p", str(port))
        assert time.monotonic() - t0 < 5
        p = doc["ports"][0]
        assert p["service"] == "unknown" and p["method"] == "" and p["banner"].startswith("XXXX"), p
        assert len(p["banner"]) == 127  # the banner field's bound
    finally:
        stop.set()
        t.join()
        srv.close()


@pytest.mark.xdist_group("serial")
def test_no_fd_or_memory_growth_across_20_scans():
    """--rounds repeats the connect scan in one process and reports each round's open
    descriptors and RSS: the 20th round holds what the 2nd held."""
    doc = private_scan("--rounds", "20", "--no-service", "-p", "1-65535")
    rounds = doc["rounds"]
    assert len(rounds) == 20
    fds = {r["fds"] for r in rounds}
    assert len(fds) == 1, rounds
    # ASan's quarantine of freed blocks grows a sanitizer build's RSS: the plain run measures.
    assert sanitizer_build() or rounds[-1]["rss_kb"] - rounds[1]["rss_kb"] <= 64, rounds
    secs = sorted(r["seconds"] for r in rounds)
    print(f"20 scans of 65535 ports: median {secs[10]:.3f} s, fds {fds.pop()}, "
          f"rss {rounds[1]['rss_kb']} -> {rounds[-1]['rss_kb']} kB")


def test_pending_connect_times_out_as_filtered():
    """A listener whose accept queue is full drops new SYNs, so a connect to it stays
    pending: it goes to the event loop and, after --connect-timeout, counts as filtered
    (not open, not closed). The timeout is the loop's deadline: the scan ends soon after."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)  # one connection fills the queue; nothing is ever accepted
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # the kernel may queue backlog + 1
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        t0 = time.monotonic()
        doc = scan_json("-p", str(port), "--no-service", "--connect-timeout", "300ms")
        took = time.monotonic() - t0
        assert (doc["open"], doc["filtered"], doc["closed"]) == (0, 1, 0), doc
        assert [(p["port"], p["state"], p["owner"]["pid"]) for p in doc["ports"]] == \
            [(port, "filtered", os.getpid())], doc
        assert 0.3 <= took < 5, took
    finally:
        for c in fillers:
            c.close()
        srv.close()


@pytest.mark.parametrize("threads", ["1", "2"])
def test_many_pending_connects_among_open_and_closed_ports(threads):
    """24 listeners with full accept queues, 2 that accept, and closed ports between
    them, on one and on two threads: a loopback connect that is not answered at once
    stops blocking after SCAN_INLINE_MISSES of them and the rest go to the event loop as
    non-blocking connects; every port is counted once, in its right state."""
    full, fillers, ok = [], [], []
    try:
        for _ in range(24):
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(0)
            full.append(srv)
            for _ in range(4):  # the kernel may queue backlog + 1
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(srv.getsockname())
                fillers.append(c)
        for _ in range(2):
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(64)
            ok.append(srv)
        closed = []
        for _ in range(10):  # bound, never listening: refused
            c = socket.socket()
            c.bind(("127.0.0.1", 0))
            closed.append(c)
        time.sleep(0.2)
        ports = {s.getsockname()[1] for s in full + ok + closed}
        doc = scan_json("-p", ",".join(map(str, sorted(ports))), "--no-service", "-t", threads,
                        "--connect-timeout", "300ms")
        for c in closed:
            c.close()
        rows = {p["port"]: p for p in doc["ports"]}
        assert sorted(p for p, r in rows.items() if r["state"] == "open") == sorted(s.getsockname()[1] for s in ok), doc
        # Filtered ports are listed (at most SCAN_FILTERED_LIST_MAX), each with its owner.
        assert sorted(p for p, r in rows.items() if r["state"] == "filtered") == \
            sorted(s.getsockname()[1] for s in full), doc
        for s_ in full:
            r = rows[s_.getsockname()[1]]
            assert r["owner"]["pid"] == os.getpid() and r["info"] == "not accepting: its accept queue is full", r
        assert (doc["open"], doc["filtered"], doc["closed"]) == (2, 24, 10), doc
    finally:
        for s_ in fillers + full + ok:
            s_.close()


def scan_threads_seen(*args, prefix=()):
    """Runs loopkit scan ARGS and returns the most threads its process had at once."""
    p = subprocess.Popen([*prefix, LOOPKIT, "scan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    most = 0
    while p.poll() is None:
        try:
            most = max(most, len(os.listdir(f"/proc/{p.pid}/task")))
        except FileNotFoundError:
            break
        time.sleep(0.01)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return most, json.loads(out)


def test_threads_share_the_ports_and_a_rate_keeps_one():
    """-t 3 deals the ports to three threads (each port tried once: the counts add up);
    --rate is one budget, so a rate-limited scan runs on one thread whatever -t says."""
    most, doc = scan_threads_seen("-p", "1-65535", "-t", "3", "--no-service", "--json")
    assert most == 3, most
    assert doc["open"] + doc["closed"] + doc["filtered"] == 65535, doc
    most, doc = scan_threads_seen("-p", "40000-40150", "-t", "3", "--rate", "300", "--no-service", "--json")
    assert most == 1, most
    assert doc["open"] + doc["closed"] + doc["filtered"] == 151, doc
    # Without -t: one thread per CPU this process may use (taskset -c 0: one; both CPUs:
    # two). Listeners with full queues keep the threads alive for the connect timeout
    # (each thread blocks on some of them a few ms, so each holds some).
    full, _, close = hostile_listeners(20, 0, "rst")
    try:
        for cpus, want in (("0", 1), (",".join(map(str, sorted(os.sched_getaffinity(0)))),
                                      len(os.sched_getaffinity(0)))):
            most, doc = scan_threads_seen("-p", ",".join(map(str, full)), "--connect-timeout", "500ms",
                                          "--no-service", "--json", prefix=("taskset", "-c", cpus))
            assert most == want, (cpus, most)
            assert doc["filtered"] == 20 and doc["tried"] == 20, doc
    finally:
        close()


def hostile_listeners(nfull, nreset, mode):
    """nfull listeners with full accept queues on the lowest of nfull + nreset free
    ports (so a scan meets them first and its threads stop blocking), and nreset above
    them that accept and reset at once (mode "finrst": half-close first). Returns
    (full ports, reset ports, close())."""
    socks = []
    for _ in range(nfull + nreset):
        s_ = socket.socket()
        s_.bind(("127.0.0.1", 0))
        socks.append(s_)
    socks.sort(key=lambda s_: s_.getsockname()[1])
    held, stop = [], threading.Event()
    for s_ in socks[:nfull]:
        s_.listen(0)
        for _ in range(4):  # the kernel may queue backlog + 1
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(s_.getsockname())
            held.append(c)

    def serve(ls):
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except OSError:
                continue
            if mode == "finrst":
                c.shutdown(socket.SHUT_WR)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()

    threads = []
    for s_ in socks[nfull:]:
        s_.listen(128)
        t = threading.Thread(target=serve, args=(s_,), daemon=True)
        t.start()
        threads.append(t)

    def close():
        stop.set()
        for t in threads:
            t.join(2)
        for s_ in held + socks:
            s_.close()

    return [s_.getsockname()[1] for s_ in socks[:nfull]], [s_.getsockname()[1] for s_ in socks[nfull:]], close


@pytest.mark.parametrize("mode", ["rst", "finrst"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_listeners_that_reset_at_once_are_open(threads, mode):
    """A listener that accepts and resets (or half-closes, then resets) at once is open:
    the handshake completed, and connect's ECONNRESET or EPIPE say so (a reset before
    the handshake is ECONNREFUSED). Met after the threads stopped blocking, where the
    second connect reports it (hostile pass: 2 to 14 of 20 hidden, or the scan aborted
    with 'Broken pipe')."""
    full, reset, close = hostile_listeners(24, 20, mode)
    try:
        time.sleep(0.2)
        doc = scan_json("-p", ",".join(map(str, full + reset)), "--no-service", "-t", threads,
                        "--connect-timeout", "300ms")
    finally:
        close()
    assert sorted(p["port"] for p in doc["ports"] if p["state"] == "open") == sorted(reset), doc
    assert sorted(p["port"] for p in doc["ports"] if p["state"] == "filtered") == sorted(full), doc
    assert (doc["open"], doc["filtered"], doc["closed"]) == (20, 24, 0), doc


IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
EXHAUST = r"""
set -e
%s link set lo up
echo "40000 40009" > /proc/sys/net/ipv4/ip_local_port_range
/usr/bin/python3 -c '
import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 7000)); l.listen(64)
held = []
while True:
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", 7000))
    except OSError:
        break
    held.append(c)
print(len(held), flush=True)
time.sleep(20)
' > "$READY" 2>&1 &
holder=$!
for i in $(seq 100); do [ -s "$READY" ] && break; sleep 0.1; done
set +e
%s scan -p 1-100,7000 --no-service --connect-timeout 300ms
rc=$?
kill $holder
exit $rc
"""


def test_no_source_port_left_fails_clearly_and_does_not_hang(tmp_path):
    """Every source port toward one port taken (a namespace with a 10-port ephemeral
    range, all connected to 127.0.0.1:7000): ports 1-100 are tried (another destination
    may reuse a source port), but no connect to 7000 can start, so the scan retries for
    --connect-timeout + SCAN_STALL_MS (1 s) and then exits 1 naming the port, the cause
    and the fix, instead of retrying forever (hostile pass: it never finished)."""
    ready = tmp_path / "held"
    t0 = time.monotonic()
    p = subprocess.run(["unshare", "-rn", "sh", "-c", EXHAUST % (IP, LOOPKIT)], capture_output=True,
                       text=True, timeout=40, env=dict(os.environ, READY=str(ready)))
    took = time.monotonic() - t0
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "no source port came free in 1." in p.stderr, p.stderr
    assert "stopped at port 7000, untried ports remain" in p.stderr, p.stderr
    assert "widen net.ipv4.ip_local_port_range" in p.stderr, p.stderr
    assert ready.read_text().strip() == "10", ready.read_text()  # all 10 held
    assert took < 20, took


@pytest.mark.parametrize("last", [195, 197])
def test_few_free_descriptors_mean_fewer_threads_not_a_failure(last):
    """Under `ulimit -n 200` with descriptors 3 to 195 taken, -t 2 runs on the four that
    are free (one thread, its loop and one socket) and tries every port; with 3 to 197
    taken no socket can be had beside the loop, and the scan says so and exits 1 after
    --connect-timeout + 1 s (hostile pass: -t 2 failed with 'eventfd: Too many open
    files', and with fewer free it retried forever)."""
    sh = (f"ulimit -n 200; for i in $(seq 3 {last}); do eval \"exec $i</dev/null\"; done; "
          f"exec {LOOPKIT} scan -t 2 -p 1-1000 --no-service --json --connect-timeout 300ms")
    p = subprocess.run(["bash", "-c", sh], capture_output=True, text=True, timeout=60)
    if last == 197:
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "no descriptor came free in 1." in p.stderr and "raise the limit (ulimit -n)" in p.stderr, p.stderr
        return
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["tried"] == 1000 and doc["open"] + doc["closed"] + doc["filtered"] == 1000, doc


def test_binary_probes_end_at_the_first_answer(lab):
    """Redis and Memcached answer their binary probe at once but hold the other probes'
    connections (a TLS hello) open: the wait ends at the first answer that names the
    service, not at --probe-timeout (new-user pass: each such port took the whole wait).
    An upper bound far above the work and far below the 5 s wait."""
    ports = [lab.ports["redis"], lab.ports["memcached"]]
    doc = scan_json("-p", ",".join(map(str, ports)), "--probe-timeout", "5s", "--banner-wait", "300ms")
    names = {p["port"]: p["service"] for p in doc["ports"]}
    assert names == {lab.ports["redis"]: "redis", lab.ports["memcached"]: "memcached"}, doc
    assert doc["service_seconds"] < 4, doc["service_seconds"]


def test_output_flags_that_clash_or_cannot_be_written_fail_before_the_scan(tmp_path):
    """--json with --nmap-xml - would put two documents on stdout: a usage error. An
    --nmap-xml path that cannot be written fails before the scan, with the verb's prefix
    (new-user pass: the scan ran, then a bare 'No such file or directory')."""
    p = loopkit("scan", "-p", "1-10", "--json", "--nmap-xml", "-")
    assert p.returncode == 2 and "give --json or --nmap-xml -, not both on stdout" in p.stderr, p.stderr
    p = loopkit("scan", "-p", "1-10", "--nmap-xml", str(tmp_path / "no" / "x.xml"))
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout)
    assert p.stderr == f"loopkit scan: --nmap-xml {tmp_path / 'no' / 'x.xml'}: No such file or directory\n", p.stderr
    out = tmp_path / "x.xml"
    p = loopkit("scan", "-p", "1-10,80", "--no-service", "--nmap-xml", str(out))
    assert p.returncode == 0, p.stderr
    info = ET.parse(out).getroot().find("scaninfo")
    assert info.get("services") == "1-10,80" and info.get("numservices") == "11", ET.tostring(info)


def test_udp_rows_have_owners_and_their_own_summary():
    """--udp: a bound UDP socket's row names its process (as `loopkit ports -u` does), and
    the summary counts UDP apart from TCP, also when no UDP port is listed (-6)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))  # bound, silent: open|filtered
    uport = u.getsockname()[1]
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 0))
    cport = c.getsockname()[1]
    c.close()  # nothing there: port unreachable, closed
    try:
        doc = scan_json("-p", "1", "--udp", f"{uport},{cport}", "--no-service")
        human = loopkit("scan", "-p", "1", "--udp", f"{uport},{cport}", "--no-service")
        v6 = loopkit("scan", "-6", "-p", "1", "--udp", f"{uport},{cport}", "--no-service")
    finally:
        u.close()
    rows = [p for p in doc["ports"] if p["proto"] == "udp"]
    assert [(p["port"], p["state"]) for p in rows] == [(uport, "open|filtered")], doc
    assert rows[0]["owner"]["pid"] == os.getpid(), rows[0]
    assert (doc["tried"], doc["open"], doc["closed"]) == (1, 0, 1), doc
    assert doc["udp"] == {"tried": 2, "open": 0, "open_filtered": 1, "closed": 1}, doc["udp"]
    line = [ln for ln in human.stdout.splitlines() if ln.startswith(f"{uport}/udp")]
    assert line and line[0].split()[4:6] == [str(os.getpid()), "python3"], human.stdout
    assert ": 1 TCP port in " in human.stdout, human.stdout
    assert "; 2 UDP ports: 0 open, 1 open|filtered, 1 closed" in human.stdout, human.stdout
    assert "; 2 UDP ports: 0 open, 0 open|filtered, 2 closed" in v6.stdout, v6.stdout  # ::1
    assert scan_json("-p", "1")["udp"] is None


def test_columns_stay_in_line_with_a_long_product(tmp_path):
    """loopkit serve's product is longer than the old 40-column field: PID and PROCESS still
    start where the header says, on every row."""
    srv = subprocess.Popen([LOOPKIT, "serve", str(tmp_path), "-p", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(srv.stdout.readline().strip().rstrip("/").rsplit(":", 1)[1])
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        p = loopkit("scan", "-p", f"{port},{lst.getsockname()[1]}")
        lst.close()
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    lines = p.stdout.splitlines()
    head, rows = lines[0], lines[1:3]
    assert len(rows) == 2 and "loopkit serve" in p.stdout, p.stdout
    assert "(HTTP and FTP on one port)" in p.stdout, p.stdout
    for pid, comm in ((srv.pid, "loopkit"), (os.getpid(), "python3")):
        row = [r for r in rows if r.endswith(" " + comm)][0]
        assert row.find(f" {pid} ") + 1 == head.index("PID"), (head, row, p.stdout)
        assert row.find(f" {comm}", head.index("PID")) + 1 == head.index("PROCESS"), (head, row)


@pytest.mark.parametrize("spec,tried", [("-", 65535), ("65000-", 536), ("-100", 100)])
def test_open_ended_port_ranges_as_nmap(spec, tried):
    """nmap's -p- (every port) and its open ends A- and -B."""
    assert private_scan("-p" + spec, "--no-service")["tried"] == tried


def test_json_seconds_are_rounded_to_milliseconds():
    """scan_seconds like the other verbs' seconds: 3 decimals, no float noise."""
    p = loopkit("scan", "-p", "1-2000", "--json")
    assert p.returncode == 0, p.stderr
    for key in ("scan_seconds", "service_seconds"):
        m = re.search(rf'"{key}":([0-9.e-]+)[,}}]', p.stdout)
        assert m and re.fullmatch(r"\d+(\.\d{1,3})?", m.group(1)), (key, p.stdout[:300])


def test_readme_sample_shows_the_header_the_binary_prints():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    readme = open(os.path.join(root, "README.md")).read()
    sample = readme.split("### `loopkit scan")[1].split("```sh\n")[1].split("```")[0]
    header = loopkit("scan", "-p", "1").stdout.splitlines()[0]
    lines = sample.splitlines()
    assert lines[0].startswith("$ loopkit scan") and lines[1] == header, lines[:2]
    summary = loopkit("scan", "-p", "1").stdout.splitlines()[-1]
    assert re.search(r"^127\.0\.0\.1: \d+ TCP ports? in [\d.]+ s: \d+ open", summary), summary
    doc = open(os.path.join(root, "docs", "scan.md")).read()
    assert re.search(r"^PORT +STATE +SERVICE +PRODUCT +PID +PROCESS$", doc, re.M)
    assert ": 65535 TCP ports in " in doc


def test_an_echo_server_is_echo_not_tls():
    """A server that sends back what it reads answered the TLS probe with our own
    ClientHello, which read as a TLS server ("ssl"); it is "echo", as nmap says."""
    import socket
    import threading
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    lst.settimeout(0.2)
    port = lst.getsockname()[1]
    stop = threading.Event()

    def echo(c):
        c.settimeout(5)
        try:
            while not stop.is_set():
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()

    def serve():
        while not stop.is_set():
            try:
                c, _ = lst.accept()
            except OSError:
                continue
            threading.Thread(target=echo, args=(c,), daemon=True).start()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        doc = scan_json("-p", str(port))
    finally:
        stop.set()
        th.join()
        lst.close()
    p = by_port(doc)[port]
    assert (p["state"], p["service"], p["tls"]) == ("open", "echo", False), p
