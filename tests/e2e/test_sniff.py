"""HTTP or FTP on one port, decided by who is calling (issue 10).

A connection that speaks is classified by its first bytes. A silent one is greeted as
FTP at once when its process is a known FTP client (or logged in over FTP here before),
never when it is a browser, and otherwise only after the window (--sniff-ms, 1 s by
default), long enough for an HTTP client whose process is busy between connect() and
its first write. These tests load the machine the way the issue describes (300
threads; a Node.js event loop blocked for 300 ms) and check that no HTTP client is
ever greeted; they time the greeting of real FTP clients from the client's side
(strace timestamps of connect() and of the read that returns "220"); and they check
that a port has one owner."""
import ftplib
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import LOOPKIT, Server, stop_child

pytestmark = pytest.mark.xdist_group("serial")

BODY = b"hello from loopkit\n"


@pytest.fixture
def site(root):
    (root / "a.txt").write_bytes(BODY)
    return root


def default_window_s():
    """The default --sniff-ms, read from --help, in seconds."""
    out = subprocess.run([LOOPKIT, "serve", "--help"], capture_output=True, text=True).stdout
    m = re.search(r"--sniff-ms\b.*?default (\d+)", out)
    assert m, out
    return int(m.group(1)) / 1000


# --- HTTP clients that are slow to speak are never greeted -------------------------------

def run_thread_storm(server, nthreads, nreq):
    """nthreads http.client connections opened together (a barrier), nreq GETs each.
    Returns the list of failures (repr of what went wrong)."""
    barrier = threading.Barrier(nthreads)
    failures = []
    lock = threading.Lock()

    def one():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            barrier.wait(timeout=60)
            for _ in range(nreq):
                conn.request("GET", "/a.txt")
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or body != BODY:
                    raise AssertionError(f"status {r.status} body {body[:40]!r}")
        except Exception as e:  # every failure is collected and asserted below
            with lock:
                failures.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return failures


def test_300_threads_never_greeted(start, site):
    s = start()  # the default server: HTTP and FTP, default window
    for round_ in range(10):
        failures = run_thread_storm(s, 300, 5)
        assert not failures, f"round {round_}: {len(failures)} of 300 failed: {failures[:5]}"
    assert "220 " not in s.stderr()


def test_thread_storm_control_fails_with_a_short_window(start, site):
    """The control run: with the old 50 ms rule, the same storm must go wrong, or the
    test above could not fail."""
    s = start("--sniff-ms", "1", "--threads", "1")
    bad = 0
    for _ in range(3):
        bad += len(run_thread_storm(s, 300, 5))
    assert bad > 0, "no client was greeted even with a 1 ms window: the storm does not load enough"


def test_client_silent_500ms_then_get(start, site):
    s = start()
    c = socket.create_connection((s.host, s.port), timeout=10)
    time.sleep(0.5)
    c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    c.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:100]
    assert data.endswith(BODY)


# A client process: one thread connects and stays silent for SILENT seconds (asleep,
# not reading), then sends a GET and prints the first line of the answer, or, with
# SILENT < 0, never sends and prints when the greeting arrived (seconds after
# connect). With BUSY, another thread spins on the CPU meanwhile.
BUSY_CLIENT = r"""
import socket, sys, threading, time
host, port, silent, busy = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
stop = False
def spin():
    x = 0
    while not stop:
        x += 1
if busy:
    threading.Thread(target=spin, daemon=True).start()
c = socket.create_connection((host, port), timeout=10)
t0 = time.monotonic()
if silent >= 0:
    time.sleep(silent)
    c.sendall(b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    print(c.makefile("rb").readline().decode().strip())
else:
    c.setblocking(False)  # a socket with a timeout polls it before each recv: that is reading
    while time.monotonic() - t0 < 10:
        try:
            if c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                break
        except BlockingIOError:
            pass
        time.sleep(0.01)
    print(f"{time.monotonic() - t0:.3f}")
stop = True
"""


def busy_client(s, silent, busy):
    p = subprocess.run([sys.executable, "-c", BUSY_CLIENT, s.host, str(s.port), str(silent), "1" if busy else "0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_a_busy_process_gets_more_windows(start, site):
    """A window ends while the client's process has a thread on the CPU (a loaded
    machine, threads queued for a lock): it may be about to send, so it gets another
    window, up to four more. Its request after 3.3 windows is answered as HTTP."""
    s = start("--sniff-ms", "300")
    assert busy_client(s, 1.0, busy=True) == "HTTP/1.1 200 OK"


def test_an_idle_process_is_greeted_when_the_window_ends(start, site):
    """The control: the same silence from a process with nothing running is greeted
    after one window (its request then meets the FTP greeting)."""
    s = start("--sniff-ms", "300")
    assert busy_client(s, 1.0, busy=False).startswith("220 ")


def test_a_busy_process_is_greeted_after_five_windows(start, site):
    """The bound: a busy process's silent connection is greeted after the window and
    SERVE_WINDOW_MORE_MAX (4) more, never held longer."""
    s = start("--sniff-ms", "300")
    took = float(busy_client(s, -1, busy=True))
    # Five windows end at 1.5 s after accept by the server's loop clock, which is read at
    # the start of a loop turn (a few ms before the client's connect() returns), so the
    # client may count a little under 1.5 s; four would end at 1.2 s.
    assert 1.4 <= took < 3.0, took


# 300 silent connections of one process, each made by its own thread, which then waits
# its turn for a lock (as threads queued for the GIL do) while two other threads spin:
# a loaded test runner. The main thread looks at the connections every 5 ms (reading
# none of them, as a thread blocked in recv would) and prints, for each, when its
# greeting came.
CROWD_CLIENT = r"""
import select, socket, struct, sys, threading, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SO_TIMESTAMPNS = 35  # the kernel stamps each greeting's arrival (CLOCK_REALTIME)
stop = threading.Event()
ep = select.epoll()
t0 = {}
socks = {}
def client():
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    before = time.time()
    c.connect((host, port))
    after = time.time()  # the GIL may hold this thread back on either side of connect()
    socks[c.fileno()] = c
    t0[c.fileno()] = (before, after)
    ep.register(c.fileno(), select.EPOLLIN)
    stop.wait()
def spin():
    x = 0
    while not stop.is_set():
        x += 1
def starter():  # not the main thread: it must be waiting on epoll when greetings come
    for _ in range(n):
        threading.Thread(target=client, daemon=True).start()
for _ in range(2):
    threading.Thread(target=spin, daemon=True).start()
threading.Thread(target=starter, daemon=True).start()
soonest, latest = [], []
deadline = time.monotonic() + 30
while len(latest) < n and time.monotonic() < deadline:
    # Looked at without blocking, then asleep: the process is busy, never waiting. When
    # this thread gets to look does not matter: the kernel's stamp says when it came.
    for fd, _ in ep.poll(0):
        _, anc, _, _ = socks[fd].recvmsg(4096, socket.CMSG_SPACE(16))
        sec, ns = [struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                   if (lvl, typ) == (socket.SOL_SOCKET, SO_TIMESTAMPNS)][0]
        at = sec + ns / 1e9
        soonest.append(at - t0[fd][0])  # from before connect(): never more than the truth
        latest.append(at - t0[fd][1])   # from after connect(): never less
        ep.unregister(fd)
    time.sleep(0.005)
stop.set()
print(len(latest), max(latest) if latest else -1, min(soonest) if soonest else -1)
"""


@pytest.mark.alone  # it measures when greetings come
def test_the_bound_holds_for_300_connections_of_a_busy_crowd(start, site):
    """Every silent connection of a busy process with 300 client threads is greeted after five
    windows, none sooner (its process stays busy), none later (lookups that answer late
    on a loaded machine do not stretch it: 206 of 500 waited 9 s in one such run). The
    kernel stamps each greeting's arrival: the client's own polling thread, fighting 300
    others for the GIL, once saw one 1.4 s late (CI: 2.90 s)."""
    s = start("--sniff-ms", "300")
    p = subprocess.run([sys.executable, "-c", CROWD_CLIENT, s.host, str(s.port), "300"],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    n, slowest, fastest = p.stdout.split()
    print(f"busy crowd, 300 ms window: {n} greeted, after {float(fastest):.3f} to {float(slowest):.3f} s")
    assert int(n) == 300, p.stdout
    assert 1.4 <= float(fastest) and float(slowest) < 2.5, p.stdout


NODE_SCRIPT = r"""
const http = require('http');
const [host, port, n, blockMs] = process.argv.slice(2);
const agent = new http.Agent({keepAlive: true, maxSockets: Number(n)});
let ok = 0, bad = 0, done = 0;
let blocked = false;
for (let i = 0; i < Number(n); i++) {
  const req = http.get({host, port: Number(port), path: '/a.txt', agent}, res => {
    let body = '';
    res.on('data', d => body += d);
    res.on('end', () => { if (res.statusCode === 200 && body === 'hello from loopkit\n') ok++; else bad++; finish(); });
  }).on('error', e => { bad++; console.error(String(e)); finish(); });
  // The first connection to complete blocks the event loop: the others have connected
  // in the kernel (the server accepts them) but their requests wait for the loop, so
  // they stay silent for blockMs.
  req.on('socket', s => s.once('connect', () => {
    if (blocked) return;
    blocked = true;
    const t = Date.now(); while (Date.now() - t < Number(blockMs)) {}
  }));
}
function finish() { if (++done === Number(n)) { console.log(JSON.stringify({ok, bad})); agent.destroy(); } }
"""


def run_node(server, n, block_ms):
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(NODE_SCRIPT)
    try:
        p = subprocess.run(["node", f.name, server.host, str(server.port), str(n), str(block_ms)],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    import json
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_node_event_loop_blocked_300ms(start, site):
    s = start()
    got = run_node(s, 200, 300)
    assert got == {"ok": 200, "bad": 0}, got


def test_node_control_fails_with_a_short_window(start, site):
    s = start("--sniff-ms", "50")
    got = run_node(s, 200, 300)
    print(f"node, 50 ms window, loop blocked 300 ms: {got}")
    assert got["bad"] > 0, f"a 50 ms window did not break a 300 ms pause: {got}"


# --- FTP clients are greeted at once --------------------------------------------------------

def strace_greeting_ms(cmd, port, input_=None, timeout=30):
    """Runs cmd under strace and returns (ms from the connect() to our port until the
    first read of "220", the completed process). Times are the client's own."""
    with tempfile.NamedTemporaryFile(suffix=".strace", delete=False) as f:
        trace = f.name
    try:
        p = subprocess.run(["strace", "-f", "-ttt", "-e", "trace=connect,read,recvfrom,recvmsg",
                            "-s", "16", "-o", trace] + cmd,
                           input=input_, capture_output=True, timeout=timeout)
        lines = open(trace, errors="replace").read().splitlines()
    finally:
        os.unlink(trace)
    t_conn = None
    fd = None
    for ln in lines:
        m = re.match(r"\d+\s+([\d.]+) connect\((\d+), .*sin_port=htons\((\d+)\)", ln)
        if m and int(m.group(3)) == port and t_conn is None:
            t_conn, fd = float(m.group(1)), m.group(2)
            continue
        if t_conn is not None:
            m = re.match(r"\d+\s+([\d.]+) (read|recvfrom|recvmsg)\(" + fd + r", \"220", ln)
            if m:
                return (float(m.group(1)) - t_conn) * 1000, p
    raise AssertionError(f"no 220 read after connect to {port} in the trace of {cmd}:\n"
                         + "\n".join(lines[-30:]) + "\n" + p.stderr.decode(errors="replace")[-500:])


FTP_CLIENTS = {
    "curl": lambda s, d: (["curl", "-s", "-o", os.path.join(d, "out"), f"ftp://{s.host}:{s.port}/a.txt"], None),
    "wget": lambda s, d: (["wget", "-q", "-O", os.path.join(d, "out"), f"ftp://{s.host}:{s.port}/a.txt"], None),
    "lftp": lambda s, d: (["lftp", "-e", f"set cmd:fail-exit yes; get a.txt -o {os.path.join(d, 'out')}; quit",
                           f"ftp://{s.host}:{s.port}/"], None),
    "ftp": lambda s, d: (["ftp", "-n", "-p", s.host, str(s.port)],
                         f"user anonymous x\nbinary\nget a.txt {os.path.join(d, 'out')}\nquit\n".encode()),
}


@pytest.mark.parametrize("client", sorted(FTP_CLIENTS))
def test_known_ftp_client_greeted_at_once(start, site, client, tmp_path):
    s = start()
    times = []
    for _ in range(7):
        d = tempfile.mkdtemp(dir=tmp_path)
        cmd, inp = FTP_CLIENTS[client](s, d)
        ms, p = strace_greeting_ms(cmd, s.port, inp)
        assert open(os.path.join(d, "out"), "rb").read() == BODY, (client, p.stderr[-300:])
        times.append(ms)
    med = statistics.median(times)
    print(f"{client}: time to 220, median {med:.2f} ms, all {[round(t, 2) for t in times]}")
    # Greeted at once, not after the 1 s window. The 3 ms goal (vsftpd greets in
    # 2.2 ms) is a performance figure: bench/ftp.sh measures it beside vsftpd; a test
    # on a shared machine can only tell "at once" from "after the window".
    assert med <= 50, f"{client}: median time to greeting {med:.2f} ms: {times}"
    assert "FTP, since" in s.stderr(), s.stderr()[-2000:]


def test_ftplib_sessions_greeted_at_once(start, site):
    """ftplib is no known program, but it waits for the greeting in poll() on the very
    socket: the lookup sees a thread reading the connection and greets at once (the
    issue's bound: the first session within the window + 5 ms, later ones 3 ms)."""
    s = start()
    window = default_window_s()
    times = []
    for i in range(6):
        t = time.monotonic()
        f = ftplib.FTP()
        f.connect(s.host, s.port, timeout=10)
        times.append((time.monotonic() - t) * 1000)
        f.login()
        got = []
        f.retrbinary("RETR a.txt", got.append)
        assert b"".join(got) == BODY
        f.quit()
    print(f"ftplib: time to 220 {[round(t, 2) for t in times]} ms (window {window * 1000:.0f} ms)")
    assert times[0] <= window * 1000 + 5, times
    assert statistics.median(times[1:]) <= 50, times  # at once (bench/ftp.sh: the 3 ms figure)
    assert "it waits for the server to speak on this connection" in s.stderr() or \
        "it logged in over FTP here" in s.stderr(), s.stderr()


WAITERS = {
    # How a client can wait for the server's first word: each is greeted at once.
    "recv": "d = s.recv(100)",
    "select": "select.select([s], [], [], 10)\nd = s.recv(100)",
    "poll": "p = select.poll()\np.register(s, select.POLLIN)\np.poll(10000)\nd = s.recv(100)",
}


@pytest.mark.parametrize("how", sorted(WAITERS))
def test_a_client_waiting_to_read_is_greeted_at_once(start, site, how):
    s = start()
    code = ("import socket, select, sys, time\n"
            f"s = socket.create_connection(('{s.host}', {s.port}))\n"
            "t = time.monotonic()\n"
            f"{WAITERS[how]}\n"
            "print(round((time.monotonic() - t) * 1000, 2), d[:4].decode() if d else '')\n")
    p = subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=20)
    ms, reply = p.stdout.split()
    assert reply == "220", (p.stdout, p.stderr)
    assert float(ms) < 50, f"{how}: greeted after {ms} ms"


def test_an_event_loop_that_connects_ahead_and_writes_later_stays_http(start, site):
    """A proxy delaying a request or a load generator keeping its rate connects first and
    writes later, its event loop asleep in epoll_wait with the socket watched for input
    only. That is not an FTP client: its GET 300 ms later is answered 200 (bench -R and
    proxy's http_delay toxic were greeted as FTP when such loops counted as waiting)."""
    s = start()
    code = ("import select, socket, time\n"
            f"s = socket.create_connection(('{s.host}', {s.port}))\n"
            "e = select.epoll()\n"
            "e.register(s.fileno(), select.EPOLLIN)\n"
            "e.poll(0.3)\n"
            "s.sendall(b'GET /a.txt HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "print(s.makefile('rb').readline().decode().strip())\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert p.stdout.strip() == "HTTP/1.1 200 OK", (p.stdout, p.stderr)


def test_a_watch_ftp_probe_beside_an_http_one_is_greeted_at_once(start, site):
    """loopkit watch probing the port both ways: its command line names http:// too, so
    its name does not make it an FTP client, but its event loop waits only to read the
    FTP probe's socket: greeted at once, not after the 1 s window."""
    s = start()
    p = subprocess.run([LOOPKIT, "watch", "--once", "--json", f"http://{s.host}:{s.port}/a.txt",
                        f"ftp://{s.host}:{s.port}/"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr)
    ms = {t["kind"]: t["last"]["latency_ms"] for t in json.loads(p.stdout)["targets"]}
    assert ms["ftp"] < 200, ms


def test_a_client_that_reads_late_is_greeted_when_it_reads(start, site):
    """A client held between connect() and recv() (a loaded machine, a slow thread) is
    not yet reading when it is first looked up; its threads are looked at again at 2,
    8, 32, 128, 512 ms... so it is greeted soon after it starts waiting, not at the end
    of the window (3 s here)."""
    s = start("--sniff-ms", "3000")
    code = ("import socket, time\n"
            f"s = socket.create_connection(('{s.host}', {s.port}))\n"
            "t = time.monotonic()\n"
            "time.sleep(0.1)\n"
            "d = s.recv(100)\n"
            "print(round((time.monotonic() - t) * 1000, 2), d[:4].decode() if d else '')\n")
    p = subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=20)
    ms, reply = p.stdout.split()
    assert reply == "220", (p.stdout, p.stderr)
    # Reading from 100 ms on, it is seen at the 171 ms look; the window would be 3000.
    assert 100 <= float(ms) < 1500, f"greeted after {ms} ms"


# --- one owner per port ------------------------------------------------------------------

@pytest.mark.parametrize("threads", ["1", "2"])
def test_second_server_on_the_same_port_exits_and_names_the_first(site, tmp_path, threads):
    first = Server(str(site), ["--threads", threads])
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_bytes(b"the wrong directory\n")
    try:
        t = time.monotonic()
        p = subprocess.run([LOOPKIT, "serve", str(other), "--port", str(first.port), "--threads", threads],
                           capture_output=True, text=True, timeout=10)
        took = time.monotonic() - t
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert took < 1.0, took
        assert f"pid {first.pid}" in p.stderr and "loopkit" in p.stderr, p.stderr
        assert "--port 0" in p.stderr, p.stderr
        for _ in range(10):
            r = subprocess.run(["curl", "-s", f"http://{first.host}:{first.port}/a.txt"],
                               capture_output=True, timeout=10)
            assert r.stdout == BODY
    finally:
        assert first.stop() == 0


def test_second_server_with_overlapping_pasv_ports_exits(site, tmp_path):
    first = Server(str(site), ["--pasv-ports", "61200-61210"])
    try:
        p = subprocess.run([LOOPKIT, "serve", str(site), "--port", "0", "--pasv-ports", "61205-61220"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "61205" in p.stderr and f"pid {first.pid}" in p.stderr, p.stderr
    finally:
        assert first.stop() == 0


def test_pasv_port_held_by_another_program_is_refused(site):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        p = subprocess.run([LOOPKIT, "serve", str(site), "--port", "0", "--pasv-ports", f"{port}-{port}"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert f"port {port} is held by" in p.stderr and f"pid {os.getpid()}" in p.stderr, p.stderr
    finally:
        holder.close()


@pytest.mark.parametrize("span,code", [("1000-2023", 0), ("1000-2024", 2)])
def test_pasv_range_of_at_most_1024_ports(site, span, code):
    """SERVE_PASV_MAX_PORTS: 1024 ports are taken (one lock each); one more is a usage
    error (2, before anything starts), not a failure to start (1)."""
    p = subprocess.Popen([LOOPKIT, "serve", str(site), "--port", "0", "--pasv-ports", span],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if code:
        _, err = p.communicate(timeout=10)
        assert p.returncode == 2, (p.returncode, err)
        assert err == f"loopkit serve: --pasv-ports {span} spans 1025 ports; at most 1024\n", err
    else:
        assert p.stdout.readline().startswith("http://"), p.stderr.read() if p.poll() is not None else ""
        assert stop_child(p) is None


def test_classification_logged_once_per_process(start, site, tmp_path):
    s = start()
    for _ in range(3):
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"ftp://{s.host}:{s.port}/a.txt"], timeout=20, check=True)
    # Three curl processes: three lines; one lftp process with two sessions: one line.
    subprocess.run(["lftp", "-e", "ls; ls; quit", f"ftp://{s.host}:{s.port}/"], capture_output=True,
                   timeout=20, check=True)
    log = s.stderr()
    assert len(re.findall(r"peer curl \(pid \d+\): FTP", log)) == 3, log
    assert len(re.findall(r"peer lftp \(pid \d+\): FTP", log)) == 1, log


def test_http_after_greeting_is_explained(start, site):
    s = start("--sniff-ms", "5")
    c = socket.create_connection((s.host, s.port), timeout=10)
    time.sleep(0.3)
    c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert c.recv(100).startswith(b"220 ")
    c.close()
    from conftest import wait_for
    assert wait_for(lambda: "sent an HTTP request after the FTP greeting" in s.stderr()), s.stderr()
    assert "raise --sniff-ms or start with --proto http" in s.stderr()


def test_http_typed_after_an_immediate_greeting_names_the_real_reason(start, site):
    # socat, nc, telnet: the client waits to read, so it is greeted at once; a human then
    # types GET. A longer --sniff-ms would change nothing: the log must not advise it.
    s = start("--sniff-ms", "10000")
    c = socket.create_connection((s.host, s.port), timeout=10)
    assert c.recv(100).startswith(b"220 ")  # read first: greeted at once, not after 10 s
    c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert c.recv(100) == b""  # closed
    c.close()
    from conftest import wait_for
    assert wait_for(lambda: "sent an HTTP request after the FTP greeting" in s.stderr()), s.stderr()
    log = s.stderr()
    assert "which it got at once since it waits for the server to speak" in log, log
    assert "start with --proto http to serve it" in log, log
    assert "raise --sniff-ms" not in log and "stayed silent" not in log, log


def test_quiet_leaves_out_the_line_per_client(start, site):
    s = start("-q")
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"ftp://{s.host}:{s.port}/a.txt"], timeout=20, check=True)
    subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{s.host}:{s.port}/a.txt"], timeout=20, check=True)
    time.sleep(0.2)
    assert "peer curl" not in s.stderr(), s.stderr()


def test_http_to_ftp_only_server_does_not_advise_sniff_ms(site, tmp_path):
    from conftest import FtpServer, wait_for
    s = FtpServer(str(site), ["--proto", "ftp"])
    try:
        c = socket.create_connection((s.host, s.port), timeout=10)
        assert c.recv(100).startswith(b"220 ")  # greeted at once: FTP alone
        c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        c.recv(100)
        c.close()
        assert wait_for(lambda: "sent an HTTP request to an FTP-only server (--proto ftp)" in s.stderr()), s.stderr()
        assert "--sniff-ms" not in s.stderr()
    finally:
        assert s.stop() == 0
