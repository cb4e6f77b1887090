"""Signals and logs (issues 11 and 12): SIGHUP reopens the log and serves on, even
during an upload; a second Ctrl-C exits at once; a grace period is kept to; what a
client sends reaches the log escaped."""
import http.client
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import (LOOPKIT, Conn, Server, exchange, loop_clients, proc_event_loops, proc_port_fds, stop_child,
                      wait_for)

pytestmark = pytest.mark.xdist_group("serial")


def test_sighup_during_put_keeps_serving_and_leaves_nothing(start, root, tmp_path):
    s = start("--write")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(4 << 20))
    up = subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--limit-rate", "2M", "-T",
                           str(src), f"http://127.0.0.1:{s.port}/up.bin"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.7)  # mid-upload
    assert up.poll() is None, "the upload ended before the signal"
    os.kill(s.pid, signal.SIGHUP)
    time.sleep(0.2)
    assert s.alive(), s.stderr()
    out, _ = up.communicate(timeout=30)
    assert out == "201", out
    assert (root / "up.bin").read_bytes() == src.read_bytes()
    assert sorted(os.listdir(root)) == ["up.bin"], os.listdir(root)
    assert "SIGHUP: access log reopened" in s.stderr()
    r = exchange(s, "GET", "/up.bin", {"Range": "bytes=0-3"})
    assert r.status == 206 and r.body == src.read_bytes()[:4]


def serve_logging_to(root, log):
    """loopkit serve ROOT on a free port with its stderr (the access log) in the file log:
    (process, port)."""
    with open(log, "w") as err:
        p = subprocess.Popen([LOOPKIT, "serve", str(root), "--port", "0"], stdout=subprocess.PIPE,
                             stderr=err)
    return p, int(p.stdout.readline().decode().strip().rsplit(":", 1)[1].rstrip("/"))


def test_sighup_moves_a_file_log_to_a_new_file_of_its_name(root, tmp_path):
    """logrotate's way (no copytruncate): the log file is renamed, SIGHUP; lines after
    the signal go to a new file of the old name, the earlier ones stay in the renamed
    one, and a log that cannot be reopened says so and keeps the old file."""
    log = tmp_path / "access.log"
    (root / "a.txt").write_text("a")
    p, port = serve_logging_to(root, log)
    try:

        def get(target):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", target)
            status = c.getresponse().status
            c.close()
            return status

        assert get("/a.txt?before") == 200
        assert wait_for(lambda: "?before" in log.read_text(), 5)
        os.rename(log, tmp_path / "access.log.1")
        os.kill(p.pid, signal.SIGHUP)
        assert wait_for(lambda: log.exists() and "reopened" in log.read_text(), 5)
        assert get("/a.txt?after") == 200
        assert wait_for(lambda: "?after" in log.read_text(), 5)
        old = (tmp_path / "access.log.1").read_text()
        assert "?before" in old and "?after" not in old, old
        assert "?before" not in log.read_text()
        assert oct(log.stat().st_mode & 0o777) == "0o644"
        # The name now holds a directory: the old file (renamed again) keeps the lines.
        os.rename(log, tmp_path / "access.log.2")
        log.mkdir()
        os.kill(p.pid, signal.SIGHUP)
        assert wait_for(lambda: "cannot reopen" in (tmp_path / "access.log.2").read_text(), 5)
        assert get("/a.txt?third") == 200
        assert wait_for(lambda: "?third" in (tmp_path / "access.log.2").read_text(), 5)
    finally:
        stop_child(p)


@pytest.mark.parametrize("plant", ["symlink", "fifo", "other-owner", "hard-link"])
def test_sighup_never_follows_what_another_user_put_at_the_log_name(root, tmp_path, plant):
    """The log's directory may be writable by others (/tmp): after the rename, another
    user can put a symlink to a file of yours, a FIFO (an open that waits for a reader),
    or a file of their own at the name. The reopen refuses each, says so, keeps the old
    file, and serves on."""
    if plant == "other-owner" and os.geteuid() != 0:
        pytest.skip("needs root: to give the planted file another owner")
    log = tmp_path / "access.log"
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (root / "a.txt").write_text("a")
    p, port = serve_logging_to(root, log)
    try:
        os.rename(log, tmp_path / "access.log.1")
        if plant == "symlink":
            os.symlink(victim, log)
        elif plant == "fifo":
            os.mkfifo(log)
        elif plant == "hard-link":  # to a file of the log's own owner (protected_hardlinks=0 allows it)
            os.link(victim, log)
        else:
            log.write_text("")
            os.chown(log, 65534, 65534)
        os.kill(p.pid, signal.SIGHUP)
        old = tmp_path / "access.log.1"
        assert wait_for(lambda: "SIGHUP: cannot reopen the access log" in old.read_text(), 5), old.read_text()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/a.txt?after")
        assert c.getresponse().status == 200
        c.close()
        assert wait_for(lambda: "?after" in old.read_text(), 5)
        assert victim.read_text() == "untouched\n"
        if plant == "other-owner":
            assert log.read_text() == ""
    finally:
        stop_child(p)


def test_sighup_storm_on_a_pipe_loses_no_line(root):
    """SIGHUP on a piped log: the new descriptor replaces the old under its number, so
    the threads writing meanwhile lose nothing (it was closed and reopened: lines were
    lost, written with EBADF, or could reach a socket that took the freed number)."""
    import threading
    (root / "a.txt").write_text("a")
    p = subprocess.Popen([LOOPKIT, "serve", str(root), "--port", "0", "--threads", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
    reader.start()
    try:
        port = int(p.stdout.readline().decode().strip().rsplit(":", 1)[1].rstrip("/"))
        done = threading.Event()

        def hup():
            while not done.is_set():
                os.kill(p.pid, signal.SIGHUP)
                time.sleep(0.0005)

        def client(n):
            for _ in range(n):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/a.txt?storm")
                assert c.getresponse().read() == b"a"
                c.close()

        h = threading.Thread(target=hup)
        h.start()
        clients = [threading.Thread(target=client, args=(1000,)) for _ in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        done.set()
        h.join()
    finally:
        stop_child(p)
        reader.join(10)
    got = sum(1 for ln in lines if b"GET /a.txt?storm" in ln)
    assert got == 4000, (got, [ln for ln in lines if b"dropped" in ln][:3])


def held_request(server, secs):
    c = socket.create_connection((server.host, server.port), timeout=30)
    c.sendall(b"GET /_/delay/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % secs)
    return c


def _signal_loop(pid):
    """The thread id of the loop that reads the signals (its epoll set holds the signalfd)."""
    sigfds = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")
              if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[signalfd]"}
    return next(tid for tid, fds in proc_event_loops(pid).items() if fds & sigfds)


@pytest.mark.parametrize("held_on", ["the signal thread", "the other thread"])
def test_second_ctrl_c_exits_at_once(root, held_on):
    """The second Ctrl-C exits at once, whichever thread holds the request in flight. On
    the other thread, the first (which reads the signals) is idle: it must still hear the
    second Ctrl-C (it stopped reading them, and the server ran out the grace)."""
    s = Server(str(root), ["--grace", "20", "--threads", "2"])
    # Keep-alive connections, 24 at a time, until both loops hold some (past its share a
    # loop deals them to the other, but on a loaded machine one loop may take a whole
    # batch: CI once saw 24 on one); those on one side are closed, the others' requests held.
    where = lambda socks: loop_clients(s, socks)
    conns = []
    for _ in range(8):
        batch = [socket.create_connection((s.host, s.port), timeout=30) for _ in range(24)]
        for c in batch:
            c.sendall(b"GET /_/get HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        conns += batch
        assert wait_for(lambda: sum(map(len, where(conns).values())) == len(conns), 5), where(conns)
        if len(where(conns)) == 2 and all(where(conns).values()):
            break
    on_signal = held_on == "the signal thread"
    assert len(where(conns)) == 2 and all(where(conns).values()), where(conns)
    sig = _signal_loop(s.pid)
    on_sig = where(conns)[sig]
    keep = [c for c in conns if (c in on_sig) == on_signal]
    assert keep, f"no connection on {held_on}: {where(conns)}"
    for c in conns:
        if c not in keep:
            c.close()
    assert wait_for(lambda: len(proc_port_fds(s.pid, s.port)[1]) == len(keep), 5)
    for c in keep:
        c.sendall(b"GET /_/delay/10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.3)
    assert len(where(keep).get(sig, [])) == (len(keep) if on_signal else 0), where(keep)
    s.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert s.alive(), "exited on the first Ctrl-C with a request in flight and 20 s of grace"
    t = time.monotonic()
    s.proc.send_signal(signal.SIGINT)
    rc = s.proc.wait(5)
    took = time.monotonic() - t
    for c in keep:
        c.close()
    assert rc == 128 + signal.SIGINT, rc
    assert took < 0.5, took
    assert "again: exiting now" in s.stderr()
    s.stop()


def test_grace_is_kept_to(root):
    s = Server(str(root), ["--grace", "2"])
    c = held_request(s, 10)
    time.sleep(0.3)
    t = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(10)
    took = time.monotonic() - t
    c.close()
    assert rc == 0, (rc, s.stderr())
    assert 1.9 <= took <= 2.4, f"exited {took:.2f} s after SIGTERM with --grace 2"
    s.stop()


def test_idle_server_exits_at_once_on_sigterm(root):
    s = Server(str(root), [])
    Conn(s).close()
    t = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(10)
    assert rc == 0 and time.monotonic() - t < 0.5
    s.stop()


def test_quote_and_backslash_in_target_are_escaped_in_the_log(server, root):
    r = exchange(server, "GET", '/a"b\\c')
    assert r.status == 404
    want = '"GET /a\\x22b\\x5cc HTTP/1.1" 404'
    assert wait_for(lambda: want in server.stderr()), server.stderr()[-500:]


def test_json_log_is_valid_json_with_odd_targets(start, root):
    import json
    s = start("--log", "json")
    exchange(s, "GET", '/a"b\\c%1b')
    deadline = time.monotonic() + 3
    lines = []
    while time.monotonic() < deadline and not lines:
        lines = [ln for ln in s.stderr().splitlines() if ln.startswith("{")]
        time.sleep(0.05)
    rec = json.loads(lines[-1])
    assert rec["target"] == '/a"b\\c%1b' and rec["status"] == 404, rec
