"""The port server serves its own user, concurrently, and deletes nothing (issue 11).

Each test fails on the old build: any uid could lease for any pid; one silent client
held the others for a second each; `loopkit port` printed whatever a fake server
answered; `--server PATH` unlinked any file; control bytes reached the log; a
/tmp/loopkit-UID created by another user blocked `loopkit port` for good."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import LOOPKIT, hard_timeout_fixture
from test_port import PortServer, env, portserver, run  # noqa: F401 (fixtures)

_hard_timeout = hard_timeout_fixture(60)


def ask(addr, line, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect("\0" + addr[1:] if addr.startswith("@") else addr)
    s.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        b = s.recv(64)
        if not b:
            break
        data += b
    s.close()
    return data


def nobody_can_run(path):
    """A copy of the binary nobody can execute (the build tree may not be reachable)."""
    d = tempfile.mkdtemp(prefix="lk-nobody-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, "loopkit")
    shutil.copy2(path, dst)
    os.chmod(dst, 0o755)
    return d, dst


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@needs_root
def test_other_user_cannot_lease_for_foreign_pids(env, portserver, tmp_path):
    ps = portserver(addr=f"@loopkit-sec-{os.getpid()}")
    script = ("import socket,sys,os\n"
              "def ask(pid):\n"
              "  s=socket.socket(socket.AF_UNIX); s.connect('\\0'+sys.argv[1][1:]); s.sendall(b'%d\\n'%pid)\n"
              "  return s.recv(64).strip().decode()\n"
              "print(ask(int(sys.argv[2])), ask(os.getpid()))\n")
    p = subprocess.run(["runuser", "-u", "nobody", "--", "python3", "-c", script, ps.addr, str(os.getpid())],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    foreign, own = p.stdout.split()
    assert foreign == "0", "a port was leased to another user's pid"
    assert int(own) > 0, "nobody could not lease for its own pid"
    rc, err = ps.stop()
    assert "belongs to uid 0, not to the caller" in err, err


def test_silent_clients_do_not_delay_others(env, portserver):
    ps = portserver(addr=f"@loopkit-sec2-{os.getpid()}")
    silent = []
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + ps.addr[1:])
        silent.append(s)
    try:
        t = time.monotonic()
        got = ask(ps.addr, b"%d\n" % os.getpid())
        took = time.monotonic() - t
    finally:
        for s in silent:
            s.close()
    assert int(got) > 0, got
    assert took < 0.2, f"answered after {took:.2f} s with 20 silent clients connected"


def fake_server(addr, answers):
    """A port server that answers each request with the next of answers."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind("\0" + addr[1:])
    ls.listen(16)
    stop = threading.Event()

    def serve():
        i = 0
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            c.recv(64)
            c.sendall(b"%d\n" % answers[min(i, len(answers) - 1)])
            i += 1
            c.close()
        ls.close()
    th = threading.Thread(target=serve)
    th.start()
    return stop, th


@pytest.mark.parametrize("answer", [22, 40999, 65535])
def test_fake_server_answers_are_not_trusted(env, answer):
    addr = f"@loopkit-fake-{os.getpid()}-{answer}"
    stop, th = fake_server(addr, [answer])
    try:
        p = run(env=dict(env, PORTSERVER_ADDRESS=addr))
    finally:
        stop.set()
        th.join()
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert str(answer) not in p.stdout, p.stdout
    assert f"answered {answer}" in p.stderr and "not using it" in p.stderr, p.stderr


def test_server_path_that_is_a_file_is_not_deleted(env, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    p = subprocess.run([LOOPKIT, "port", "--server", str(precious)], capture_output=True, text=True,
                       env=env, timeout=10)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "not a socket" in p.stderr and "nothing was removed" in p.stderr, p.stderr
    assert precious.read_text() == "keep me\n"


def test_control_bytes_in_requests_are_escaped_in_the_log(env, portserver):
    ps = portserver(addr=f"@loopkit-sec3-{os.getpid()}")
    got = ask(ps.addr, b"\x1b]0;PWNED\x07\x1b[2J\n")
    assert got == b"0\n"
    rc, err = ps.stop()
    assert "\x1b" not in err and "\x07" not in err, repr(err)
    assert "\\x1b]0;PWNED\\x07" in err, err


def test_request_without_newline_is_answered(env, portserver):
    ps = portserver(addr=f"@loopkit-sec4-{os.getpid()}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + ps.addr[1:])
    s.sendall(b"%d" % os.getpid())
    s.shutdown(socket.SHUT_WR)
    got = s.recv(64)
    s.close()
    assert int(got) > 0, got


SQUATTED_UID = 64919  # a uid no one else uses: its /tmp/loopkit-UID is this test's alone


@needs_root
def test_squatted_tmp_directory_falls_back_to_home(tmp_path):
    """Another user made /tmp/loopkit-UID first: the user's leases go to ~/.cache instead.
    (The user is a uid of this test alone: nobody's own directory may exist already,
    made by any other test that runs loopkit as nobody.)"""
    uid = SQUATTED_UID
    squat = f"/tmp/loopkit-{uid}"
    created = not os.path.exists(squat)
    if created:
        os.mkdir(squat, 0o777)  # another user (root here) took the name first
    d, binary = nobody_can_run(LOOPKIT)  # a directory any user can traverse
    home = os.path.join(d, "home")
    os.mkdir(home)
    os.chown(home, uid, uid)
    try:
        st = os.stat(squat)
        if st.st_uid == uid:
            pytest.fail(f"{squat} already belongs to {uid}: the test cannot play the squatter")
        p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                            "env", "-u", "XDG_RUNTIME_DIR", f"HOME={home}", binary, "port"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        assert int(p.stdout) > 0
        assert f"{squat} is not this user's" in p.stderr, p.stderr
        assert os.path.isdir(os.path.join(home, ".cache", "loopkit", "ports"))
    finally:
        shutil.rmtree(d)
        if created:
            os.rmdir(squat)


# --- a port server of another user (hostile review, finding 4) -------------------------

# Run as nobody: binds the abstract name first, answers every request with the port
# given, then binds that port itself (the review's fakeps2.py). argv: name, port.
SQUATTER = r'''
import socket, sys, time
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind("\0" + sys.argv[1][1:])
ls.listen(4)
ls.settimeout(10)
print("up", flush=True)
taken = None
try:
    while True:
        c, _ = ls.accept()
        c.settimeout(1)
        try:
            c.recv(64)
            c.sendall(b"%d\n" % int(sys.argv[2]))
        except OSError:
            pass
        c.close()
        if taken is None:
            time.sleep(0.05)
            taken = socket.socket()
            taken.bind(("127.0.0.1", int(sys.argv[2])))
            taken.listen(1)
except socket.timeout:
    pass
'''


@pytest.fixture
def squatter():
    made = []

    def start(name, port):
        p = subprocess.Popen(["/usr/bin/python3", "-c", SQUATTER, name, str(port)], user=65534, group=65534,
                             extra_groups=[], cwd="/", stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "up"
        made.append(p)
        return p
    yield start
    for p in made:
        p.kill()
        p.wait(5)
        p.stdout.close()


@needs_root
@pytest.mark.uses("port-pool-23900")
def test_port_server_of_another_user_is_not_trusted(env, squatter):
    from test_port import free_pair
    port = free_pair()
    name = f"@loopkit-squat-{os.getpid()}"
    sq = squatter(name, port)
    p = run(env=dict(env, PORTSERVER_ADDRESS=name))
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", "printed a port handed out by another user's server"
    assert f"the port server at {name} belongs to another user: python3 (pid {sq.pid}) of user nobody " \
           f"(uid 65534)" in p.stderr, p.stderr
    assert "unset PORTSERVER_ADDRESS" in p.stderr and "loopkit port --server" in p.stderr, p.stderr
    # --server on the squatted name names the holder too.
    s = subprocess.run([LOOPKIT, "port", "--server", name], capture_output=True, text=True, env=env, timeout=10)
    assert s.returncode == 1, s
    assert f"held by python3 (pid {sq.pid}) of user nobody (uid 65534)" in s.stderr, s.stderr


@needs_root
def test_port_server_of_root_is_trusted_by_other_users(env, portserver):
    """root's port server (a shared CI machine's) still serves every user."""
    ps = portserver(addr=f"@loopkit-rootps-{os.getpid()}")
    d, lk = nobody_can_run(LOOPKIT)
    run = os.path.join(d, "run")  # nobody's runtime directory, should it lease
    os.mkdir(run, 0o700)
    os.chown(run, 65534, 65534)
    try:
        p = subprocess.run(["/bin/sh", "-c", f"{lk} port --json"], user=65534, group=65534, extra_groups=[],
                           cwd="/", capture_output=True, text=True, timeout=20,
                           env={"PATH": "/usr/bin:/bin", "PORTSERVER_ADDRESS": ps.addr, "XDG_RUNTIME_DIR": run})
    finally:
        shutil.rmtree(d)
    assert p.returncode == 0, p.stderr
    assert '"source":"portserver"' in p.stdout.replace(" ", ""), p.stdout
