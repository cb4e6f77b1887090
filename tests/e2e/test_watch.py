"""loopkit watch (issue 15): probes of real services brought up and down during the test,
states and their timing, --once and --until-up exit codes, --on-change, and bad input.

The services are real: python's http.server, loopkit serve (HTTP and FTP on one port),
vsftpd, TCP listeners and a UDP responder of the test's own, and commands."""
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from conftest import LOOPKIT, hard_timeout_fixture
from watchlab import Watcher, lease_ports, metric, run, services_fixture

_hard_timeout = hard_timeout_fixture(120)
svc = services_fixture()


@pytest.fixture
def watchers():
    started = []

    def _start(*args, **kw):
        w = Watcher(*args, **kw)
        started.append(w)
        return w

    yield _start
    for w in started:
        alive = w.alive()
        err = w.stderr()[-3000:]
        rc = w.stop()
        w.close()
        assert alive, "the watcher died during the test:\n" + err
        assert rc == 0, f"the watcher exited {rc} after SIGTERM:\n{err}"


def write_config(tmp_path, targets, name="watch.json"):
    p = tmp_path / name
    p.write_text(json.dumps({"targets": targets}, indent=2))
    return p


def once_json(*args, rc=None):
    p = run("--once", "--json", *args)
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    assert doc is not None, (p.returncode, p.stdout, p.stderr)
    if rc is not None:
        assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    return {t["name"]: t for t in doc["targets"]}, doc, p


# ---------------------------------------------------------------------------
# Every kind of probe against a real service
# ---------------------------------------------------------------------------


def test_once_probes_every_kind_of_target(svc, tmp_path):
    http_p, serve_p, tcp_p, udp_p = lease_ports(4)
    svc.python_http(http_p)
    svc.loopkit_serve(serve_p)
    svc.tcp_listener(tcp_p)
    svc.udp_responder(udp_p)
    cfg = write_config(tmp_path, [
        {"name": "page", "url": f"http://127.0.0.1:{http_p}/", "contains": "hello from python"},
        {"name": "health", "url": f"http://localhost:{http_p}/health.json",
         "json": {"path": "checks[0].up", "equals": True}},
        {"name": "anything", "url": f"http://127.0.0.1:{serve_p}/_/anything?x=1",
         "json": {"path": "method", "equals": "GET"}},
        {"name": "chunked", "url": f"http://127.0.0.1:{serve_p}/_/stream-bytes/3000?seed=7&chunk_size=7"},
        {"name": "ftp", "url": f"ftp://127.0.0.1:{serve_p}/"},
        {"name": "tcp", "url": f"tcp://127.0.0.1:{tcp_p}"},
        {"name": "udp", "url": f"udp://127.0.0.1:{udp_p}", "send": "ping", "expect": "pong ping"},
        {"name": "true", "cmd": ["/bin/true"]},
        {"name": "shell", "cmd": "test -d /"},
    ])
    rows, doc, p = once_json("--config", cfg, rc=0)
    assert doc["up"] == doc["total"] == 9 and doc["down"] == 0, doc
    for name, r in rows.items():
        assert r["state"] == "up" and r["last"]["ok"], r
        assert r["last"]["latency_ms"] > 0, r
    assert rows["page"]["last"]["status"] == 200 and rows["anything"]["last"]["status"] == 200
    assert rows["ftp"]["last"]["status"] == 230  # logged in (anonymous)
    # the human table is the same result
    p = run("--once", "--config", cfg)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["STATE", "TARGET", "LATENCY", "DETAIL"]
    assert sum(1 for ln in lines[1:] if ln.startswith("up ")) == 9, p.stdout
    assert lines[-1].startswith("9 targets: 9 up, 0 down, 0 pending"), p.stdout


def test_once_exits_1_and_names_the_cause_of_each_failure(svc, tmp_path):
    http_p, closed, serve_p = lease_ports(3)
    svc.python_http(http_p)
    svc.loopkit_serve(serve_p)
    cfg = write_config(tmp_path, [
        {"name": "up", "url": f"http://127.0.0.1:{http_p}/"},
        {"name": "refused", "url": f"tcp://127.0.0.1:{closed}"},
        {"name": "missing", "url": f"http://127.0.0.1:{http_p}/nope"},
        {"name": "wrong-body", "url": f"http://127.0.0.1:{http_p}/", "contains": "goodbye"},
        {"name": "wrong-json", "url": f"http://127.0.0.1:{http_p}/health.json",
         "json": {"path": "status", "equals": "down"}},
        {"name": "no-field", "url": f"http://127.0.0.1:{http_p}/health.json", "json": {"path": "db.ok"}},
        {"name": "not-json", "url": f"http://127.0.0.1:{http_p}/", "json": {"path": "a"}},
        {"name": "503", "url": f"http://127.0.0.1:{serve_p}/_/status/503"},
        {"name": "404-wanted", "url": f"http://127.0.0.1:{http_p}/nope", "status": [404]},
        {"name": "slow", "url": f"http://127.0.0.1:{serve_p}/_/delay/0.4", "max_latency": "100ms"},
        {"name": "exit3", "cmd": "echo broken pipe-line >&2; exit 3"},
        # 3 s: python's listen backlog is 5, and the other probes arrive at once; a
        # dropped SYN is sent again after 1 s
        {"name": "not-ftp", "url": f"ftp://127.0.0.1:{http_p}/", "timeout": "3s"},
    ])
    rows, doc, p = once_json("--config", cfg, "--retries", "0", rc=1)
    assert (doc["up"], doc["down"]) == (2, 10), doc
    assert rows["up"]["state"] == rows["404-wanted"]["state"] == "up"
    detail = {n: r["last"]["detail"] for n, r in rows.items()}
    assert detail["refused"] == f"connection refused: nothing listens on 127.0.0.1:{closed}"
    assert detail["missing"] == "HTTP 404 Not Found (want 200-299)"
    assert detail["wrong-body"] == 'the body lacks "goodbye"'
    assert detail["wrong-json"] == 'status is "ok", want "down"'
    assert detail["no-field"] == "the JSON body has no db.ok (db missing)"
    assert detail["not-json"].startswith("the body is not JSON: "), detail
    assert detail["503"] == "HTTP 503 Service Unavailable (want 200-299)"
    assert re.fullmatch(r"slower than the 100 ms budget \(4\d\d\.\d ms\)", detail["slow"]), detail
    assert detail["exit3"] == "exit status 3: broken pipe-line"
    # python's http.server waits in silence for a request: no greeting comes
    assert detail["not-ftp"] == "timed out after 3 s waiting for the FTP greeting", detail


def test_vsftpd_login_and_refusal(svc, tmp_path):
    if os.getuid() != 0:
        pytest.fail("vsftpd runs from a config of the test's own as root; run the suite as root "
                    "(as `make test` in CI does)")
    port, = lease_ports(1)
    svc.vsftpd(port)
    cfg = write_config(tmp_path, [
        {"name": "anon", "url": f"ftp://127.0.0.1:{port}/"},
        {"name": "greeting", "url": f"ftp://127.0.0.1:{port}/", "login": False},
        {"name": "local-user", "url": f"ftp://bob:secret@127.0.0.1:{port}/"},
    ])
    rows, doc, p = once_json("--config", cfg, "--retries", "0", rc=1)
    assert rows["anon"]["state"] == "up" and rows["anon"]["last"]["status"] == 230, rows["anon"]
    assert rows["greeting"]["state"] == "up" and rows["greeting"]["last"]["status"] == 220
    # local logins are off (local_enable=NO): vsftpd refuses bob
    assert rows["local-user"]["state"] == "down", rows["local-user"]
    assert re.match(r'(login|USER) refused: "530 ', rows["local-user"]["last"]["detail"]), rows["local-user"]
    svc.stop("vsftpd")
    rows, doc, p = once_json(f"ftp://127.0.0.1:{port}/", "--retries", "0", rc=1)
    assert rows[f"ftp://127.0.0.1:{port}/"]["last"]["detail"] == \
        f"connection refused: nothing listens on 127.0.0.1:{port}"


# ---------------------------------------------------------------------------
# Targets that never answer, and commands that never end
# ---------------------------------------------------------------------------


def test_targets_that_accept_and_never_answer_time_out(svc):
    silent, full, udp_sink = lease_ports(3)
    svc.tcp_listener(silent)                       # accepts, never says a word
    svc.tcp_listener(full, backlog=0, accept=False)  # never accepts: its backlog fills
    svc.udp_responder(udp_sink, answer=None)       # reads datagrams, never answers
    # fill the backlog so that a new SYN goes unanswered
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", full))
        fillers.append(s)
    time.sleep(0.2)
    try:
        t0 = time.monotonic()
        rows, doc, p = once_json(f"http://127.0.0.1:{silent}/", f"ftp://127.0.0.1:{silent}/",
                                 f"tcp://127.0.0.1:{full}", f"udp://127.0.0.1:{udp_sink}",
                                 "--timeout", "400ms", "--retries", "1", rc=1)
        took = time.monotonic() - t0
    finally:
        for s in fillers:
            s.close()
    d = {n.split("://")[0] + (":full" if str(full) in n else ""): r for n, r in rows.items()}
    assert d["http"]["last"]["detail"] == "timed out after 400 ms waiting for the answer", d["http"]
    assert d["ftp"]["last"]["detail"] == "timed out after 400 ms waiting for the FTP greeting", d["ftp"]
    assert d["tcp:full"]["last"]["detail"] == "timed out after 400 ms connecting", d["tcp:full"]
    assert d["udp"]["last"]["detail"] == "timed out after 400 ms waiting for the answer", d["udp"]
    for r in rows.values():
        assert r["probes"] == 2 and r["state"] == "down", r   # a retry, then DOWN
        assert 0.39 <= r["last"]["latency_ms"] / 1000 < 1.5, r
    # all four at once: two rounds of 400 ms, not eight
    assert took < 0.8 + 3, took


def test_a_command_that_outlives_its_timeout_is_killed_with_its_children(tmp_path):
    marker = f"{time.time():.6f}"
    p = run("--once", "--json", "--timeout", "300ms", "--retries", "0",
            f"cmd:sleep 30.{marker.replace('.', '')} & sleep 31.{marker.replace('.', '')}")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["targets"][0]["last"]["detail"] == "timed out after 300 ms (killed)", doc
    time.sleep(0.3)
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.replace(".", "").encode() in f.read():
                        left.append(pid)
            except OSError:
                pass
    assert not left, f"processes of the killed command still run: {left}"


# ---------------------------------------------------------------------------
# --until-up
# ---------------------------------------------------------------------------


def test_until_up_waits_for_a_service_that_comes_up_later(svc):
    port, tcp_p = lease_ports(2)
    svc.tcp_listener(tcp_p)
    proc = subprocess.Popen([LOOPKIT, "watch", "--until-up", "--timeout", "20s", "--json",
                             f"http://127.0.0.1:{port}/", f"tcp://127.0.0.1:{tcp_p}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert proc.poll() is None, "--until-up gave up while a service was still missing"
    t_up = time.monotonic()
    svc.python_http(port)
    out, err = proc.communicate(timeout=20)
    waited_after = time.monotonic() - t_up
    assert proc.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["up"] == 2 and not doc["timed_out"], doc
    assert doc["elapsed_ms"] >= 1500, doc
    # polled every 250 ms: it sees the server soon after it listens
    assert waited_after < 5, waited_after
    # not a terminal: one line per target as it comes up, on stderr
    assert re.search(rf"up +http://127\.0\.0\.1:{port}/ +HTTP 200 OK", err), err


def test_until_up_gives_up_after_the_timeout_with_exit_1():
    port, = lease_ports(1)
    t0 = time.monotonic()
    p = run("--until-up", "--timeout", "1500ms", f"tcp://127.0.0.1:{port}")
    took = time.monotonic() - t0
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert 1.4 < took < 6, took
    assert "gave up waiting" in p.stdout.splitlines()[-1], p.stdout
    assert f"connection refused: nothing listens on 127.0.0.1:{port}" in p.stdout
    # Not a terminal (a CI log): the first line says what it waits for, as wait-for-it does.
    assert p.stderr.splitlines()[0] == \
        f"loopkit watch: waiting up to 1.5 s for 1 target: tcp://127.0.0.1:{port}", p.stderr


def test_until_up_shows_progress_on_a_terminal():
    port, = lease_ports(1)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(LOOPKIT, [LOOPKIT, "watch", "--until-up", "--timeout", "1200ms", f"tcp://127.0.0.1:{port}"])
    out = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                b = os.read(fd, 65536)
            except OSError:
                break
            if not b:
                break
            out += b
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 1, text
    # the line is redrawn in place: carriage return, erase, the count and who is missing
    redraws = re.findall(r"\r\x1b\[Kwaiting (\d+\.\d)/1 s: 0 of 1 up; waiting for tcp://", text)
    assert len(redraws) >= 3, text
    assert "gave up waiting" in text


# ---------------------------------------------------------------------------
# A running watcher: states, their timing, --on-change
# ---------------------------------------------------------------------------


def test_states_follow_the_service_with_retries_and_on_change(svc, tmp_path, watchers):
    port, = lease_ports(1)
    svc.loopkit_serve(port)
    log = tmp_path / "changes.log"
    hook = f'echo "$WATCH_TARGET|$WATCH_STATE|$WATCH_PREVIOUS|$WATCH_KIND|$WATCH_DETAIL" >> {log}'
    url = f"http://127.0.0.1:{port}/"
    w = watchers("--interval", "400ms", "--retries", "2", "--json", "--on-change", hook, url,
                 db=tmp_path / "h.db", json_lines=True)
    w.wait_state(url, "up")
    svc.stop("serve")
    t_down = time.monotonic()
    row = w.wait_state(url, "down", timeout=10)
    took = time.monotonic() - t_down
    # three failures in a row (retries 2) at 400 ms: DOWN after 0.8-1.2 s, not at once
    assert row["consecutive_failures"] == 3, row
    assert 0.7 < took < 1.2 + 2.5, took
    svc.loopkit_serve(port)
    t_back = time.monotonic()
    w.wait_state(url, "up", timeout=10)
    assert time.monotonic() - t_back < 0.4 + 2.5
    time.sleep(0.5)
    # stdout: the URL line, then one JSON line per change
    events = [json.loads(ln) for _, ln in w.lines]
    assert [(e["state"], e["previous"]) for e in events] == [("up", "pending"), ("down", "up"), ("up", "down")], events
    assert events[1]["consecutive_failures"] == 3
    assert events[1]["detail"] == f"connection refused: nothing listens on 127.0.0.1:{port}"
    # the hook ran for the two real changes (a service found up at start is no news)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(log.read_text().splitlines() if log.exists() else []) < 2:
        time.sleep(0.05)
    assert log.read_text().splitlines() == [
        f"{url}|down|up|http|connection refused: nothing listens on 127.0.0.1:{port}",
        f"{url}|up|down|http|",
    ]
    ms = w.metrics()
    assert metric(ms, "loopkit_watch_state_changes_total", target=url) == 3
    assert metric(ms, "loopkit_watch_up", target=url) == 1


def test_human_change_lines(svc, tmp_path, watchers):
    port, = lease_ports(1)
    svc.tcp_listener(port)
    w = watchers("-i", "300ms", "--retries", "0", f"tcp://127.0.0.1:{port}", db=tmp_path / "h.db")
    w.wait_state(f"tcp://127.0.0.1:{port}", "up")
    svc.stop("tcp")
    w.wait_state(f"tcp://127.0.0.1:{port}", "down")
    time.sleep(0.3)
    lines = [ln for _, ln in w.lines]
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ  up +tcp://127\.0\.0\.1:{port}  ok in \d+\.\d+ ms",
                        lines[0]), lines
    assert re.fullmatch(rf"\S+  down +tcp://127\.0\.0\.1:{port}  connection refused: nothing listens on "
                        rf"127\.0\.0\.1:{port} \(1 failed probe in a row\)", lines[1]), lines


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_malformed_config_names_line_and_column(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "targets": [\n    {"url": "tcp://127.0.0.1:1",}\n  ]\n}\n')
    r = run("--once", "--config", p)
    assert r.returncode == 2, r
    assert r.stderr.startswith(f"loopkit watch: {p}: malformed JSON at line 3, column "), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("targets, message", [
    ([{"url": "tcp://127.0.0.1:1", "urll": 1}], 'targets[0]: unknown key "urll"'),
    ([{"url": "tcp://127.0.0.1:1", "contains": "x"}], '"contains" does not apply to a tcp target'),
    ([{"name": "a"}], 'targets[0] (a): give either "url" or "cmd"'),
    ([{"url": "tcp://127.0.0.1:1", "interval": "5"}], None),
    ([{"url": "tcp://127.0.0.1:1", "interval": "5x"}], "interval: \"5x\": unknown unit"),
    ([{"url": "tcp://127.0.0.1:1", "interval": 0.01}], "interval: 0.01 s is outside 100 ms"),
    ([{"url": "http://127.0.0.1:1/", "status": [700]}], "status: want a code"),
    ([{"url": "http://127.0.0.1:1/", "json": {"path": 3}}], 'json is {"path"'),
    ([{"url": "tcp://127.0.0.1:1", "retries": -1}], "retries is a whole number 0-100"),
    ([{"name": "x", "url": "tcp://127.0.0.1:1"}, {"name": "x", "url": "tcp://127.0.0.1:2"}],
     'two targets named "x"'),
    ([{"url": "https://127.0.0.1/"}], "https targets are not supported yet"),
    ([{"url": "gopher://127.0.0.1/"}], "unknown kind of target"),
    ([{"url": "tcp://127.0.0.1"}], "a tcp target needs a port"),
    ([{"url": "tcp://127.0.0.1:99999"}], "the port must be 1-65535"),
    ([{"url": "http://user:pw@127.0.0.1/"}], "credentials in a http URL are not supported"),
    ([{"url": "tcp://10.1.2.3:80"}], "10.1.2.3 is not a loopback address"),
    ([{"url": "http://example.com/"}], "example.com is not a loopback address"),
    ([{"cmd": []}], '"cmd" is a command line'),
])
def test_config_errors_are_usage_errors_with_the_cause(tmp_path, targets, message):
    cfg = write_config(tmp_path, targets)
    r = run("--once", "--config", cfg)
    if message is None:  # "5" is five seconds: valid (no server listens: down, exit 1)
        assert r.returncode == 1, r
        return
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr, r.stderr


def test_config_file_problems(tmp_path):
    r = run("--once", "--config", tmp_path / "missing.json")
    assert r.returncode == 2 and "missing.json: No such file or directory" in r.stderr, r.stderr
    (tmp_path / "list.json").write_text("[]")
    r = run("--once", "--config", tmp_path / "list.json")
    assert r.returncode == 2 and 'want an object with a "targets" array' in r.stderr, r.stderr
    r = run("--once")
    assert r.returncode == 2 and "no targets: give URLs" in r.stderr, r.stderr
    r = run("--once", "--until-up", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and "give --once or --until-up, not both" in r.stderr, r.stderr
    r = run("--once", "localhost")
    assert r.returncode == 2 and "localhost: not a target" in r.stderr, r.stderr


def test_too_many_targets_is_refused(tmp_path):
    limit = 10000  # WATCH_TARGETS_MAX
    cfg = write_config(tmp_path, [{"url": f"tcp://127.0.0.1:{1 + i % 60000}", "name": f"t{i}"}
                                  for i in range(limit + 1)])
    r = run("--once", "--config", cfg, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"more than {limit} targets; split them over several watchers" in r.stderr


def test_remote_targets_need_allow_remote_and_no_name_is_looked_up(tmp_path):
    r = run("--once", "tcp://192.0.2.1:80")
    assert r.returncode == 2, r
    assert "192.0.2.1 is not a loopback address; only 127.0.0.0/8, ::1 and localhost are watched unless " \
           "--allow-remote" in r.stderr
    # localhost, 127.x.y.z and ::1 are loopback
    port, = lease_ports(1)
    rows, doc, p = once_json(f"tcp://localhost:{port}", f"tcp://127.3.4.5:{port}", f"tcp://[::1]:{port}",
                             "--retries", "0", rc=1)
    assert all(r["last"]["detail"].startswith("connection refused") for r in rows.values()), rows


def test_port_taken_is_a_clear_error(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([LOOPKIT, "watch", "--port", str(port), "--db", str(tmp_path / "h.db"),
                            "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=20)
    finally:
        s.close()
    assert r.returncode == 1, r
    assert r.stderr.startswith("loopkit watch: the status page: "), r.stderr
    # the holder (this test) and the fix, said once
    assert f"port {port} on 127.0.0.1 is held by " in r.stderr and f"(pid {os.getpid()})" in r.stderr, r.stderr
    assert r.stderr.count("--port 0") == 1 and "try --port 0 for any free port" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# The page answers only what it must: no SSRF, Host checked, GET only
# ---------------------------------------------------------------------------


def test_no_request_can_add_a_target(svc, tmp_path, watchers):
    port, bait = lease_ports(2)
    svc.tcp_listener(port)
    accepted = []
    b = socket.socket()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    b.bind(("127.0.0.1", bait))
    b.listen(16)
    b.settimeout(0.1)
    w = watchers("-i", "200ms", f"tcp://127.0.0.1:{port}", db=tmp_path / "h.db")
    try:
        # blackbox_exporter's /probe?target= does not exist here; other paths ignore queries
        for path, want in ((f"/probe?target=127.0.0.1:{bait}&module=tcp_connect", 404),
                           (f"/metrics?target=tcp://127.0.0.1:{bait}", 200),
                           (f"/api/status?url=http://127.0.0.1:{bait}/", 200)):
            st, _, body = w.get(path)
            assert st == want, (path, st, body)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                c, _ = b.accept()
                accepted.append(c)
            except socket.timeout:
                pass
        assert not accepted, "a request made the watcher connect to a port it was not given"
        assert set(w.rows()) == {f"tcp://127.0.0.1:{port}"}
        # DNS rebinding: a Host that names another site is refused
        st, _, body = w.get("/", headers={"Host": "evil.example"})
        assert st == 403 and b"DNS rebinding" in body, (st, body)
        st, _, _ = w.get("/metrics", headers={"Host": f"localhost:{w.port}"})
        assert st == 200
        st, h, body = w.get("/", method="POST")
        assert st == 405 and h["Allow"] == "GET, HEAD, OPTIONS", (st, h)
        st, _, body = w.get("/nope")
        assert st == 404 and b"/metrics" in body
    finally:
        b.close()
        for c in accepted:
            c.close()


def test_help_names_every_flag():
    p = subprocess.run([LOOPKIT, "watch", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    for flag in ("--config", "--interval", "--timeout", "--retries", "--db", "--port", "--once",
                 "--until-up", "--json", "--on-change", "--allow-remote", "--max-inflight",
                 "--retention", "--keep"):
        assert flag in p.stdout, flag
    assert "default 62894" in p.stdout


def test_sigint_stops_a_running_watcher(tmp_path):
    w = Watcher("-i", "200ms", "tcp://127.0.0.1:1", db=tmp_path / "h.db")
    try:
        w.wait_state("tcp://127.0.0.1:1", "down")
        assert w.stop(signal.SIGINT) == 0, w.stderr()
        assert w.stderr() == ""
    finally:
        w.close()
