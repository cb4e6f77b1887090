"""Uploads keep what they replace, and a crash leaves nothing (issue 11, "Uploads keep
what they replace"); --max-body holds for FTP as for HTTP (one fact, one place).

HTTP PUT and FTP STOR share core/fsroot.c: the bytes go to an unnamed O_TMPFILE in the
target's directory, which is linked into place only when complete. The old build wrote
".NAME.lk-XXXXXX" beside the target (which a kill -9 left behind for good) and gave
every upload mode 0644 and the server's owner.
"""
import ftplib
import hashlib
import io
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import CURL, FtpCtl, FtpServer, hard_timeout_fixture, httpc, wait_for

_hard_timeout = hard_timeout_fixture(60)


def snapshot(top):
    """{relpath: (sha256 | 'dir', mode, uid, gid)} of everything under top, dotfiles too."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                what = "dir"
            else:
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, str(top))] = (what, stat.S_IMODE(st.st_mode), st.st_uid,
                                                  st.st_gid)
    return out


def umask():
    m = os.umask(0)
    os.umask(m)
    return m


def ftp_login(srv):
    f = ftplib.FTP(timeout=10)
    f.connect(srv.host, srv.port)
    f.login()
    return f


def put(srv, name, body):
    return httpc(srv, "PUT", "/" + name, body=body).status


def stor(srv, name, body):
    f = ftp_login(srv)
    try:
        return f.storbinary("STOR " + name, io.BytesIO(body))
    finally:
        f.close()


UPLOADERS = {"http": put, "ftp": stor}


# ============================================================== modes and owners


@pytest.mark.parametrize("proto", sorted(UPLOADERS))
@pytest.mark.parametrize("mode", [0o600, 0o755, 0o640])
def test_replacing_keeps_the_mode(root, ftp_start, proto, mode):
    target = root / "f.txt"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    srv = ftp_start("--write")
    UPLOADERS[proto](srv, "f.txt", b"new content")
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(os.stat(target).st_mode) == mode, oct(os.stat(target).st_mode)


@pytest.mark.parametrize("proto", sorted(UPLOADERS))
def test_a_script_stays_executable_and_new_files_get_0644_less_umask(root, ftp_start, proto):
    script = root / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho old\n")
    os.chmod(script, 0o755)
    srv = ftp_start("--write")
    UPLOADERS[proto](srv, "run.sh", b"#!/bin/sh\necho new\n")
    p = subprocess.run([str(script)], capture_output=True, timeout=5)
    assert p.stdout == b"new\n", "the replaced script is no longer executable"
    UPLOADERS[proto](srv, "brand-new.txt", b"x")
    assert stat.S_IMODE(os.stat(root / "brand-new.txt").st_mode) == 0o644 & ~umask()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can keep another user's ownership")
@pytest.mark.parametrize("proto", sorted(UPLOADERS))
def test_as_root_the_owner_and_group_stay(root, ftp_start, proto):
    target = root / "theirs.txt"
    target.write_bytes(b"old")
    os.chown(target, 4321, 4322)
    os.chmod(target, 0o600)
    srv = ftp_start("--write")
    UPLOADERS[proto](srv, "theirs.txt", b"new")
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o600)
    assert target.read_bytes() == b"new"


# ============================================================== kill -9 mid-upload


def upload_fd_size(pid, root):
    """Bytes in the server's unnamed upload file in root, or -1 while there is none."""
    fddir = f"/proc/{pid}/fd"
    for n in os.listdir(fddir):
        try:
            target = os.readlink(os.path.join(fddir, n))
            if target.startswith(str(root) + "/") and target.endswith("(deleted)") or ".lk-" in target:
                return os.stat(os.path.join(fddir, n)).st_size
        except OSError:
            continue
    return -1


def start_server(root):
    return FtpServer(str(root), ["--write", "--sniff-ms", "50"])


def crash(srv):
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(5)
    srv.stop()  # closes its log


BIG = 10 << 20


@pytest.fixture
def crash_tree(root):
    (root / "big.bin").write_bytes(os.urandom(1 << 20))  # the file the upload replaces
    (root / "sub").mkdir()
    (root / "sub" / "keep.txt").write_bytes(b"keep\n")
    return root


def test_kill_9_during_ftp_stor_leaves_the_directory_as_it_was(crash_tree):
    before = snapshot(crash_tree)
    srv = start_server(crash_tree)
    try:
        c = FtpCtl(srv, timeout=10).login()
        d = c.epsv_data()
        assert c.cmd("STOR big.bin")[0] == 150
        d.sendall(os.urandom(3 << 20))  # of 10 MB
        assert wait_for(lambda: upload_fd_size(srv.pid, crash_tree) >= 3 << 20, 5), \
            "the server never held the upload"
        crash(srv)
        d.close()
        c.close()
    finally:
        if srv.alive():
            crash(srv)
    assert snapshot(crash_tree) == before
    srv = start_server(crash_tree)  # and a restart finds nothing to keep either
    try:
        assert snapshot(crash_tree) == before
    finally:
        srv.stop()


def test_kill_9_during_http_put_leaves_the_directory_as_it_was(crash_tree, tmp_path):
    before = snapshot(crash_tree)
    src = tmp_path / "upload.bin"
    src.write_bytes(os.urandom(BIG))
    srv = start_server(crash_tree)
    curl = subprocess.Popen([CURL, "-s", "-T", str(src), "--limit-rate", "2M",
                             srv.url + "big.bin"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: upload_fd_size(srv.pid, crash_tree) >= 3 << 20, 10), \
            "the server never held the upload"
        crash(srv)
        assert curl.wait(10) != 0
    finally:
        if curl.poll() is None:
            curl.kill()
            curl.wait()
        if srv.alive():
            crash(srv)
    assert snapshot(crash_tree) == before
    srv = start_server(crash_tree)
    try:
        assert snapshot(crash_tree) == before
    finally:
        srv.stop()


def test_restart_removes_temporaries_a_crash_left_earlier(crash_tree):
    """Named temporaries (where O_TMPFILE is missing, or of old builds) whose writer is
    gone are removed at start; one of a live process is not."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = [crash_tree / f".big.bin.lk-{dead.pid}-0a1b2c", crash_tree / "sub" / f".k.lk-{dead.pid}-ffffff"]
    alive = crash_tree / f".big.bin.lk-{os.getpid()}-123456"
    for p in stale + [alive]:
        p.write_bytes(b"half an upload")
    srv = start_server(crash_tree)
    try:
        assert [p for p in stale if p.exists()] == []
        assert alive.exists(), "a live process's upload was removed"
    finally:
        srv.stop()


# ============================================================== --max-body for FTP


def test_max_body_limits_ftp_stor_and_appe(root, ftp_start):
    (root / "old.bin").write_bytes(b"old content")
    srv = ftp_start("--write", "--max-body", "1M")
    before = snapshot(root)
    for cmd in ("STOR old.bin", "STOR new.bin", "APPE old.bin"):
        f = ftp_login(srv)
        with pytest.raises(ftplib.error_perm) as ei:
            f.storbinary(cmd, io.BytesIO(os.urandom(2 << 20)))
        assert str(ei.value).startswith("552") and "1 MiB" in str(ei.value), ei.value
        assert f.voidcmd("NOOP").startswith("200")  # the session goes on
        f.close()
        assert snapshot(root) == before, cmd
    # At the limit exactly: accepted.
    stor(srv, "exact.bin", b"x" * (1 << 20))
    assert (root / "exact.bin").stat().st_size == 1 << 20
    # HTTP answers the same limit with 413.
    assert put(srv, "new.bin", b"x" * ((1 << 20) + 1)) == 413
    assert "STOR /old.bin FTP\" 552" in srv.stderr()


def test_a_partial_put_is_refused_not_stored_as_the_file(root, ftp_start):
    # RFC 9110 14.5: a PUT with Content-Range must get 400; storing the part as the
    # whole file would truncate it silently (curl -X PUT -H 'Content-Range: ...')
    (root / "p.txt").write_bytes(b"0123456789")
    srv = ftp_start("--write")
    r = httpc(srv, "PUT", "/p.txt", {"Content-Range": "bytes 0-0/10"}, b"x")
    assert r.status == 400, r
    assert b"Content-Range" in r.body and b"PUT the whole file" in r.body, r.body
    assert (root / "p.txt").read_bytes() == b"0123456789"
    r = httpc(srv, "PUT", "/p.txt", {}, b"whole")
    assert r.status == 204 and (root / "p.txt").read_bytes() == b"whole", r


def test_max_body_stops_reading_an_endless_upload(root, ftp_start):
    """Past the limit the server reads (and drops) a little more so the client can see
    552, but a client that never stops is cut off."""
    srv = ftp_start("--write", "--max-body", "1K")
    c = FtpCtl(srv, timeout=10).login()
    d = c.epsv_data()
    assert c.cmd("STOR endless.bin")[0] == 150
    chunk = b"\0" * (1 << 20)
    sent, cut = 0, False
    d.settimeout(10)
    while sent < 256 << 20:
        try:
            d.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        sent += len(chunk)
    assert cut, f"sent {sent >> 20} MiB past a 1 KiB limit without being cut off"
    code, text = c.reply()
    assert code == 552, text
    assert not (root / "endless.bin").exists()
    c.close()


# ============================================================== MKCOL: directories over HTTP

def test_mkcol_makes_a_directory_that_put_can_fill(root, ftp_start):
    """HTTP's way to make a directory (WebDAV's MKCOL, as FTP's MKD): 201, then a PUT
    into it works; again is 405, a missing parent 409; nothing on a read-only server."""
    srv = ftp_start("--write")
    r = httpc(srv, "MKCOL", "/made")
    assert r.status == 201, r
    st = os.stat(root / "made")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 & ~umask()
    assert httpc(srv, "PUT", "/made/notes.txt", body=b"hi\n").status == 201
    assert (root / "made" / "notes.txt").read_bytes() == b"hi\n"
    again = httpc(srv, "MKCOL", "/made")
    assert again.status == 405 and b"exists already" in again.body, again
    deep = httpc(srv, "MKCOL", "/no/such/parent")
    assert deep.status == 409 and b"parent directory does not exist" in deep.body, deep
    assert not (root / "no").exists()
    for method in ("MKCOL", "PUT"):  # the one message FTP's STOR and MKD give too
        hidden = httpc(srv, method, "/.secret", body=b"x" if method == "PUT" else None)
        assert hidden.status == 404 and b"hidden" in hidden.body, hidden
        assert not (root / ".secret").exists()
    with FtpCtl(srv) as c:
        c.login()
        code, text = c.cmd("MKD .secret")
        assert code == 550 and "hidden" in text and not (root / ".secret").exists(), text
    foreign = httpc(srv, "MKCOL", "/evil", headers={"Origin": "http://attacker.example"})
    assert foreign.status == 403 and not (root / "evil").exists(), foreign
    allow = httpc(srv, "OPTIONS", "/")
    assert "MKCOL" in allow.header("Allow"), allow
    # curl, as a user would type it
    p = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "MKCOL",
                        srv.url + "bycurl"], capture_output=True, text=True, timeout=10)
    assert p.stdout == "201" and (root / "bycurl").is_dir(), p


def test_mkcol_on_a_read_only_server_is_refused(root, ftp_start):
    srv = ftp_start()
    r = httpc(srv, "MKCOL", "/made")
    assert r.status == 405 and b"read-only" in r.body and not (root / "made").exists(), r


# ============================================================== symlinks out of DIR (hostile review #7)
# One rule (core/fsroot.c): a symlink that reads as missing (it leads out of DIR, or
# nowhere) is missing for writes too and is never replaced; with --follow-symlinks it is
# followed like any name.


@pytest.fixture
def linked(tmp_path, root):
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_bytes(b"secret\n")
    (root / "sub").mkdir()
    (root / "inside.txt").write_bytes(b"inside\n")
    os.symlink(str(out / "secret.txt"), str(root / "link_out"))
    os.symlink(str(out), str(root / "dirlink_out"))
    os.symlink("inside.txt", str(root / "link_in"))
    return root, out


def links_untouched(root, out):
    assert os.readlink(str(root / "link_out")) == str(out / "secret.txt")
    assert os.readlink(str(root / "dirlink_out")) == str(out)
    assert (out / "secret.txt").read_bytes() == b"secret\n"
    assert sorted(os.listdir(str(out))) == ["secret.txt"]


@pytest.mark.parametrize("name", ["link_out", "dirlink_out"])
def test_put_over_a_symlink_out_is_refused(ftp_start, linked, name):
    root, out = linked
    srv = ftp_start("--write")
    assert httpc(srv, "GET", "/" + name).status == 404  # reads: missing
    r = httpc(srv, "PUT", "/" + name, body=b"pwned\n")
    assert r.status == 409 and b"symlink leading out of the served directory" in r.body, r
    r = httpc(srv, "DELETE", "/" + name)
    assert r.status == 404, r
    links_untouched(root, out)
    # A symlink inside DIR is an ordinary name: replaced as PUT says (204).
    assert httpc(srv, "PUT", "/link_in", body=b"new\n").status == 204
    assert (root / "link_in").read_bytes() == b"new\n" and not os.path.islink(str(root / "link_in"))


def test_curl_put_over_a_symlink_out(ftp_start, linked, tmp_path):
    root, out = linked
    srv = ftp_start("--write")
    src = tmp_path / "src.txt"
    src.write_bytes(b"pwned\n")
    p = subprocess.run([CURL, "-s", "-w", "%{http_code}", "-o", "/dev/null", "-T", str(src),
                        f"http://127.0.0.1:{srv.port}/link_out"], capture_output=True, timeout=10)
    assert p.stdout == b"409", p
    links_untouched(root, out)


def test_ftp_writes_treat_a_symlink_out_as_missing(ftp_start, linked):
    root, out = linked
    srv = ftp_start("--write")
    f = ftp_login(srv)
    try:
        for cmd in ("RNFR link_out", "DELE link_out", "RNFR dirlink_out", "RMD dirlink_out"):
            with pytest.raises(ftplib.error_perm) as e:
                f.sendcmd(cmd)
            assert str(e.value).startswith("550"), (cmd, e.value)
        with pytest.raises(ftplib.error_perm) as e:
            f.storbinary("STOR link_out", io.BytesIO(b"pwned\n"))
        assert str(e.value).startswith("553") and "symlink" in str(e.value), e.value
        assert f.sendcmd("RNFR inside.txt").startswith("350")
        with pytest.raises(ftplib.error_perm) as e:
            f.sendcmd("RNTO link_out")  # onto the link: it would vanish
        assert str(e.value).startswith("553") and "symlink" in str(e.value), e.value
        assert (root / "inside.txt").read_bytes() == b"inside\n"
    finally:
        f.close()
    links_untouched(root, out)


def test_follow_symlinks_writes_follow_the_rule_too(ftp_start, linked):
    """With --follow-symlinks a link out reads as what it leads to, so writes see it: a
    DELETE removes the link (never its target)."""
    root, out = linked
    srv = ftp_start("--write", "--follow-symlinks")
    assert httpc(srv, "GET", "/link_out").status == 200
    assert httpc(srv, "DELETE", "/link_out").status == 204
    assert not os.path.lexists(str(root / "link_out"))
    assert (out / "secret.txt").read_bytes() == b"secret\n"


def test_ftp_rename_a_directory_into_itself(ftp_start, root):
    (root / "sub").mkdir()
    (root / "sub" / "f.txt").write_bytes(b"f\n")
    srv = ftp_start("--write")
    f = ftp_login(srv)
    try:
        assert f.sendcmd("RNFR sub").startswith("350")
        with pytest.raises(ftplib.error_perm) as e:
            f.sendcmd("RNTO sub/inside")
        assert str(e.value) == "553 a directory cannot be moved into itself", e.value
        assert f.sendcmd("RNFR sub").startswith("350")
        assert f.sendcmd("RNTO moved").startswith("250")
    finally:
        f.close()
    assert (root / "moved" / "f.txt").read_bytes() == b"f\n"
