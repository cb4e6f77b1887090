"""FTP active mode between local users (hostile review, finding 1).

On this machine every user's address is 127.0.0.1, so "PORT/EPRT only to the control
connection's own address" let another user point one of the owner's loopkit servers at
any local listener: at the passive data port of the owner's `--user` server (whose uid
check then saw the owner's own uid, so the file went to the attacker), or at a third
party's service. Now a local client's PORT/EPRT target must be a listener of the
client's own uid (sock_diag), checked again just before the connection is made.

The attacker runs as `nobody` (runuser); the owner is the test runner (root). Each
attack test fails on the old build: the EPRT was answered 200 and the server connected.
The controls show the same user's active mode still works with curl, ftplib and lftp.
"""
import ftplib
import os
import socket
import subprocess
import tempfile

import pytest

from conftest import FtpCtl, hard_timeout_fixture, wait_for, write_tree

_hard_timeout = hard_timeout_fixture(40)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

SECRET = b"TOP SECRET owner data\n"
PASSIVE_HINT = "passive mode (EPSV or PASV) works"

# A small FTP client run as another user. argv: server port, then commands; "-" reads
# one more reply when the last was preliminary (1xx); "LISTEN" opens a listener of
# this user and prints its port (then "{L}" in later commands is that port); "ACCEPT"
# reads what arrives on it. Prints one line per step.
ATTACKER = r'''
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode(errors="replace")
        if not line:
            return "EOF"
        if len(line) > 3 and line[3] == " ":
            return line.strip()
def cmd(c):
    s.sendall(c.encode() + b"\r\n")
    return reply()
reply()
if cmd("USER anonymous").startswith("331"):
    cmd("PASS x@example.com")
last, lst = "", None
for c in sys.argv[2:]:
    if c == "-":
        r = reply() if last.startswith("1") else "none"
    elif c == "LISTEN":
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(5)
        r = str(lst.getsockname()[1])
    elif c == "ACCEPT":
        d, _ = lst.accept()
        d.settimeout(5)
        got = b""
        while True:
            b = d.recv(4096)
            if not b:
                break
            got += b
        r = "DATA " + got.decode(errors="replace").strip()
    else:
        r = cmd(c.replace("{L}", str(lst.getsockname()[1]) if lst else "{L}"))
    if c not in ("LISTEN", "ACCEPT"):
        last = r  # the last reply
    print(r, flush=True)
'''


def as_nobody(port, *commands):
    """Starts the attacker client as nobody; its stdout yields one line per step."""
    return subprocess.Popen(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", ATTACKER, str(port),
                             *commands], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    return out.splitlines()


def login(srv, user=None, password=None):
    c = FtpCtl(srv)
    if user is None:
        return c.login()
    assert c.cmd(f"USER {user}")[0] == 331
    code, text = c.cmd(f"PASS {password}")
    assert code == 230, text
    return c


def epsv_port(c):
    code, text = c.cmd("EPSV")
    assert code == 229, text
    return int(text.split("|||")[1].split("|")[0])


def read_all(d):
    got = b""
    while True:
        b = d.recv(65536)
        if not b:
            return got
        got += b


@pytest.fixture
def drop(tmp_path):
    d = tmp_path / "drop"
    d.mkdir()
    write_tree(d, {"hello.txt": b"hello ftp\n"})
    return d


@pytest.fixture
def private(tmp_path):
    d = tmp_path / "private"
    d.mkdir()
    write_tree(d, {"secret.txt": SECRET})
    os.chmod(str(d), 0o700)
    return d


def listener(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    s.listen(4)
    s.settimeout(0.2)
    return s


def nobody_connected(s):
    try:
        c, _ = s.accept()
    except socket.timeout:
        return False
    c.close()
    return True


@needs_root
def test_another_user_cannot_bounce_into_the_owners_passive_port(ftp_start, drop, private):
    """Review repro A: the attacker points the owner's anonymous drop box at the passive
    port of the owner's --user server and uploads what comes: the owner's secret."""
    box = ftp_start("--write", root_dir=drop)
    vault = ftp_start("--user", "me:pw", root_dir=private)
    owner = login(vault, "me", "pw")
    p = epsv_port(owner)  # the owner's client will connect in a moment
    att = as_nobody(box.port, f"EPRT |1|127.0.0.1|{p}|", "STOR stolen.txt", "-")
    eprt = att.stdout.readline().strip()
    stor = att.stdout.readline().strip()
    # The owner's client now opens its data connection and asks for the file. On the
    # old build the drop box had taken the passive port: refused here, and the file
    # went down the drop box's connection into stolen.txt.
    try:
        d = socket.create_connection(("127.0.0.1", p), timeout=3)
    except ConnectionRefusedError:
        d = None
    first = owner.cmd("RETR secret.txt")
    data = read_all(d) if d else b""
    final = owner.reply()
    rest = finish(att)
    stolen = drop / "stolen.txt"
    assert not stolen.exists(), f"the attacker stole {stolen.read_bytes()!r} ({eprt}; {stor}; {rest})"
    assert eprt.startswith("501 "), eprt
    assert "belongs to another user" in eprt and PASSIVE_HINT in eprt, eprt
    assert stor.startswith("425 "), stor  # nothing to connect to: PORT was refused
    assert (first[0], data, final[0]) == (150, SECRET, 226), (first, data, final)
    owner.cmd("QUIT")
    assert "refused EPRT from 127.0.0.1" in box.stderr(), box.stderr()
    assert "another user's socket" not in vault.stderr()


@needs_root
def test_another_user_cannot_bounce_to_a_third_party(ftp_start, drop):
    """Review repro C: PORT/EPRT at a listener of another user (here root's): refused
    with the reason, and nothing connects to it, whatever transfer follows."""
    box = ftp_start("--write", root_dir=drop)
    victim = listener()
    v = victim.getsockname()[1]
    att = as_nobody(box.port, f"PORT 127,0,0,1,{v // 256},{v % 256}", "RETR hello.txt",
                    f"EPRT |1|127.0.0.1|{v}|", "LIST", "STOR x.txt")
    lines = finish(att)
    assert lines[0].startswith("501 ") and "belongs to another user" in lines[0], lines
    assert PASSIVE_HINT in lines[0], lines
    assert lines[2].startswith("501 ") and "belongs to another user" in lines[2], lines
    assert [lines[i][:4] for i in (1, 3, 4)] == ["425 "] * 3, lines
    assert not nobody_connected(victim), "the server connected to another user's listener"
    victim.close()
    assert not (drop / "x.txt").exists()


@needs_root
def test_another_user_keeps_active_mode_to_its_own_listener(ftp_start, drop):
    """The rule is the uid, not a blanket refusal: nobody's own listener is served."""
    box = ftp_start("--write", root_dir=drop)
    lines = finish(as_nobody(box.port, "LISTEN", "EPRT |1|127.0.0.1|{L}|", "RETR hello.txt", "ACCEPT", "-"))
    assert lines[1].startswith("200 "), lines
    assert lines[2].startswith("150 "), lines
    assert lines[3] == "DATA hello ftp", lines
    assert lines[4].startswith("226 "), lines


@needs_root
def test_listener_replaced_by_another_user_after_port(ftp_start, drop):
    """The client's listener closes after EPRT and another user's takes its port: the
    transfer is refused before any connection (425 naming why), not sent to it."""
    srv = ftp_start("--write", root_dir=drop)
    mine = listener()
    p = mine.getsockname()[1]
    with login(srv) as c:
        assert c.cmd(f"EPRT |1|127.0.0.1|{p}|")[0] == 200
        mine.close()
        # nobody binds the freed port and waits for a connection.
        squat = subprocess.Popen(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
             "import socket,sys\ns=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)\n"
             "print('up', flush=True); s.settimeout(3)\n"
             "try:\n  s.accept(); print('CONNECTED')\nexcept socket.timeout:\n  print('quiet')\n", str(p)],
            stdout=subprocess.PIPE, text=True)
        assert squat.stdout.readline().strip() == "up"
        assert c.cmd("RETR hello.txt")[0] == 150  # then the connection is tried
        code, text = c.reply()
        assert code == 425, text
        assert "is not the one PORT or EPRT found" in text and PASSIVE_HINT in text, text
        out, _ = squat.communicate(timeout=10)
        assert out.strip() == "quiet", "the server connected to the other user's listener"
        assert c.cmd("NOOP")[0] == 200


def test_port_to_nothing_listening_is_refused(ftp_start, drop):
    srv = ftp_start(root_dir=drop)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    with login(srv) as c:
        code, text = c.cmd(f"EPRT |1|127.0.0.1|{p}|")
        assert code == 501, text
        assert f"nothing listens at 127.0.0.1:{p}" in text and PASSIVE_HINT in text, text
        # Passive mode still works, as the reply says.
        d = c.epsv_data()
        assert c.cmd("RETR hello.txt")[0] == 150
        assert read_all(d) == b"hello ftp\n"
        assert c.reply()[0] == 226
        d.close()


# ------------------------------------------------------------ the same user: still works

def test_same_user_active_mode_with_curl(ftp_start, drop):
    srv = ftp_start("--write", root_dir=drop)
    url = f"ftp://127.0.0.1:{srv.port}/"
    got = subprocess.run(["curl", "-sS", "--max-time", "10", "--ftp-port", "-", url + "hello.txt"],
                         capture_output=True, timeout=20)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"hello ftp\n"
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"uploaded actively\n")
        f.flush()
        up = subprocess.run(["curl", "-sS", "--max-time", "10", "--ftp-port", "-", "-T", f.name, url + "up.txt"],
                            capture_output=True, timeout=20)
    assert up.returncode == 0, up.stderr
    assert (drop / "up.txt").read_bytes() == b"uploaded actively\n"
    assert wait_for(lambda: '"STOR /up.txt FTP" 226' in srv.stderr(), 2), srv.stderr()


def test_same_user_active_mode_with_ftplib(ftp_start, drop):
    srv = ftp_start("--write", root_dir=drop)
    f = ftplib.FTP()
    f.connect("127.0.0.1", srv.port, timeout=10)
    f.login()
    f.set_pasv(False)
    parts = []
    f.retrbinary("RETR hello.txt", parts.append)
    assert b"".join(parts) == b"hello ftp\n"
    assert "hello.txt" in f.nlst()
    with tempfile.TemporaryFile() as src:
        src.write(b"x" * 100000)
        src.seek(0)
        f.storbinary("STOR big.bin", src)
    f.quit()
    assert (drop / "big.bin").read_bytes() == b"x" * 100000


def test_same_user_active_mode_with_lftp(ftp_start, drop):
    srv = ftp_start(root_dir=drop)
    got = subprocess.run(["lftp", "-c", f"set ftp:passive-mode off; set net:max-retries 1; "
                          f"set net:timeout 5; open -p {srv.port} 127.0.0.1; cat hello.txt"],
                         capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"hello ftp\n"
    assert "refused" not in srv.stderr(), srv.stderr()
