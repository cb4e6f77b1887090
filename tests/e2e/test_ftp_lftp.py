"""End-to-end tests of `loopkit serve` FTP with lftp (issue 3): mirror a tree of more than
200 files down and back up, and lftp's everyday commands. Checks sha256 of every file.

lftp comes from Debian's `lftp` (scripts/deps installs it); without it the tests fail.
"""
import hashlib
import os
import random
import shutil
import subprocess
import tempfile

import pytest

from conftest import hard_timeout_fixture, need_tool

_hard_timeout = hard_timeout_fixture(40)

LFTP = shutil.which("lftp")


@pytest.fixture(autouse=True)
def _lftp_installed():
    need_tool("lftp", "lftp")


SETTINGS = ("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 5; "
            "set net:reconnect-interval-base 1; set net:persist-retries 0; "
            "set xfer:clobber on; set cmd:interactive no; ")


def lftp(srv, script, tmp_path, timeout=30):
    """Runs `lftp -c` against srv (anonymous); returns CompletedProcess (text)."""
    home = tmp_path / "lftp-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), LFTP_HOME=str(home))
    cmd = [LFTP, "-c", SETTINGS + f"open -u anonymous,lk@example.com {srv.ftp_url}; " + script]
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"lftp did not finish within {timeout} s: {e.stdout!r} {e.stderr!r}")


def tree_sums(top):
    """({relpath: sha256} of files, {relpath} of dirs) under top."""
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for d in dirnames:
            dirs.add(os.path.relpath(os.path.join(dirpath, d), str(top)))
        for n in filenames:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, str(top))] = hashlib.sha256(f.read()).hexdigest()
    return files, dirs


def make_tree(top):
    """5 dirs x 4 subdirs x 10 files + 12 top-level files (212), assorted sizes, one empty dir."""
    rnd = random.Random(1234)
    sizes = [0, 1, 17, 1024, 4095, 4096, 65536, 100003]
    n = 0
    for i in range(12):
        with open(os.path.join(str(top), f"top-{i:02d}.dat"), "wb") as f:
            f.write(rnd.randbytes(sizes[i % len(sizes)]))
        n += 1
    for a in range(5):
        for b in range(4):
            d = os.path.join(str(top), f"dir{a}", f"sub{b}")
            os.makedirs(d)
            for c in range(10):
                size = sizes[(a + b + c) % len(sizes)]
                with open(os.path.join(d, f"f{c:02d}.bin"), "wb") as f:
                    f.write(rnd.randbytes(size))
                n += 1
    with open(os.path.join(str(top), "dir0", "big.bin"), "wb") as f:
        f.write(rnd.randbytes(3 << 20))
    n += 1
    os.makedirs(os.path.join(str(top), "emptydir"))
    assert n >= 200
    return n


def no_temp_files(top):
    return [rel for rel in tree_sums(top)[0] if ".lk-" in os.path.basename(rel)]


def test_lftp_mirror_down_and_up(root, tmp_path, ftp_start):
    n = make_tree(root)
    want_files, want_dirs = tree_sums(root)
    assert len(want_files) == n
    srv = ftp_start()
    down = tmp_path / "down"
    p = lftp(srv, f"mirror --parallel=4 / {down}", tmp_path)
    assert p.returncode == 0, f"lftp mirror failed: {p.stdout}\n{p.stderr}"
    got_files, got_dirs = tree_sums(down)
    assert set(got_files) == set(want_files), (
        f"missing {sorted(set(want_files) - set(got_files))[:10]}, "
        f"extra {sorted(set(got_files) - set(want_files))[:10]}")
    bad = [k for k in want_files if got_files[k] != want_files[k]]
    assert not bad, f"checksum mismatch after mirror down: {bad[:10]}"
    assert got_dirs == want_dirs

    up_root = tmp_path / "up-root"
    up_root.mkdir()
    srv2 = ftp_start("--write", root_dir=str(up_root))
    p = lftp(srv2, f"mirror -R --no-perms {down} /up", tmp_path)
    assert p.returncode == 0, f"lftp mirror -R failed: {p.stdout}\n{p.stderr}"
    assert not no_temp_files(up_root), no_temp_files(up_root)
    up_files, up_dirs = tree_sums(up_root / "up")
    assert set(up_files) == set(want_files), (
        f"missing {sorted(set(want_files) - set(up_files))[:10]}, "
        f"extra {sorted(set(up_files) - set(want_files))[:10]}")
    bad = [k for k in want_files if up_files[k] != want_files[k]]
    assert not bad, f"checksum mismatch after mirror up: {bad[:10]}"
    assert up_dirs == want_dirs


def test_lftp_mirror_up_keeps_modification_times(root, tmp_path, ftp_start):
    """lftp's mirror -R sets each uploaded file's time with MFMT (listed in FEAT): the
    copy keeps the source's times, as with vsftpd's two-argument MDTM. They were the
    upload's time."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    times = {"a.txt": 1609459200, "d/b.bin": 1262304000}  # 2021-01-01, 2010-01-01 UTC
    for name, t in times.items():
        (src / name).write_bytes(name.encode() * 100)
        os.utime(src / name, (t, t))
    srv = ftp_start("--write")
    p = lftp(srv, f"mirror -R --no-perms {src} /up", tmp_path)
    assert p.returncode == 0, f"lftp mirror -R failed: {p.stdout}\n{p.stderr}"
    got = {name: int((root / "up" / name).stat().st_mtime) for name in times}
    assert got == times, got


def test_mfmt_sets_a_time_and_refuses_bad_ones(root, ftp_start):
    import ftplib
    (root / "f.txt").write_bytes(b"f")
    (root / "dir").mkdir()
    srv = ftp_start("--write")
    f = ftplib.FTP()
    f.connect(srv.host, srv.port, timeout=10)
    f.login()
    assert "MFMT" in f.sendcmd("FEAT")
    assert f.sendcmd("MFMT 20200229235959.5 f.txt") == "213 Modify=20200229235959; /f.txt"
    st = (root / "f.txt").stat()
    assert (int(st.st_mtime), st.st_mtime_ns % 10**9) == (1583020799, 500000000)
    assert f.sendcmd("MDTM f.txt") == "213 20200229235959"
    # A link inside the root: the file it leads to, as MDTM reads it (the link's own
    # time changed, and 213 said the file's had).
    os.symlink("f.txt", root / "link")
    assert f.sendcmd("MFMT 19691231235959 link") == "213 Modify=19691231235959; /link"
    assert f.sendcmd("MDTM f.txt") == "213 19691231235959"
    assert f.sendcmd("MFMT 20200229235959.5 f.txt").startswith("213 ")
    for bad in ("MFMT 20210229000000 f.txt", "MFMT 2020022923595 f.txt", "MFMT 20200229235959",
                "MFMT 00000101000000 f.txt", "MFMT 18991231235959 f.txt",
                "MFMT 20201301000000 f.txt", "MFMT x f.txt"):
        try:
            f.sendcmd(bad)
            pytest.fail(f"{bad} accepted")
        except ftplib.error_perm as e:
            assert str(e).startswith("501 "), (bad, e)
    for bad, code in (("MFMT 20200101000000 dir", "550"), ("MFMT 20200101000000 missing", "550")):
        try:
            f.sendcmd(bad)
            pytest.fail(f"{bad} accepted")
        except ftplib.error_perm as e:
            assert str(e).startswith(code), (bad, e)
    f.quit()
    ro = ftp_start()
    g = ftplib.FTP()
    g.connect(ro.host, ro.port, timeout=10)
    g.login()
    try:
        g.sendcmd("MFMT 20200101000000 f.txt")
        pytest.fail("MFMT accepted without --write")
    except ftplib.error_perm as e:
        assert str(e).startswith("550"), e
    g.quit()
    assert int((root / "f.txt").stat().st_mtime) == 1583020799


def test_lftp_mirror_up_refused_read_only(root, tmp_path, ftp_start):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    srv = ftp_start()
    p = lftp(srv, f"mirror -R --no-perms {src} /up", tmp_path)
    assert p.returncode != 0, "mirror -R succeeded on a read-only server"
    assert os.listdir(str(root)) == []


def test_lftp_everyday_commands(root, tmp_path, ftp_start):
    data = random.Random(5).randbytes(2 << 20)
    (root / "big.bin").write_bytes(data)
    local = tmp_path / "local.txt"
    local.write_bytes(b"uploaded by lftp\n")
    srv = ftp_start("--write")
    out = tmp_path / "pget.bin"
    script = (f"pget -n 4 big.bin -o {out}; "          # segmented: REST + parallel RETR
              f"put {local} -o put.txt; "
              "mkdir newdir; mv put.txt newdir/moved.txt; "
              f"get newdir/moved.txt -o {tmp_path / 'back.txt'}; "
              "cls -1 newdir; rm big.bin; mkdir gone; rmdir gone")
    p = lftp(srv, script, tmp_path)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    with open(str(out), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert (root / "newdir" / "moved.txt").read_bytes() == b"uploaded by lftp\n"
    assert (tmp_path / "back.txt").read_bytes() == b"uploaded by lftp\n"
    assert "moved.txt" in p.stdout, p.stdout
    assert not (root / "big.bin").exists()
    assert not (root / "gone").exists()
    assert sorted(os.listdir(str(root))) == ["newdir"]


MODES = {"rw.txt": 0o644, "private.txt": 0o600, "tool.sh": 0o755,
         "pub": 0o755, "team": 0o750, "team/notes.txt": 0o640, "mine": 0o700,
         "mine/key.pem": 0o600}


def modes_of(top):
    """{relpath: permission bits} of every file and directory under top."""
    got = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            got[os.path.relpath(p, str(top))] = os.stat(p).st_mode & 0o777
    return got


def test_lftp_mirror_keeps_modes(root, tmp_path, ftp_start):
    """A plain `mirror` (lftp takes modes from MLSD's UNIX.mode, else from perm: 0444
    files, 0555 directories) copies the server's modes, and a non-root user can delete
    the copy. Run as nobody when the tests run as root; umask 022 keeps these modes."""
    for rel, mode in sorted(MODES.items()):
        p = os.path.join(str(root), rel)
        if "." in rel:
            with open(p, "wb") as f:
                f.write(rel.encode())
        else:
            os.mkdir(p)
    for rel, mode in MODES.items():
        os.chmod(os.path.join(str(root), rel), mode)
    srv = ftp_start()
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    work = tempfile.mkdtemp(prefix="lk-lftp-modes-", dir="/tmp")  # nobody can reach it
    try:
        if as_user:
            shutil.chown(work, "nobody")
        down = os.path.join(work, "down")
        cmd = as_user + ["sh", "-c", 'umask 022 && exec "$@"', "sh", LFTP, "-c",
                         SETTINGS + f"open -u anonymous,lk@example.com {srv.ftp_url}; mirror / {down}"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30,
                           env=dict(os.environ, HOME=work, LFTP_HOME=work), stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"lftp mirror failed: {p.stdout}\n{p.stderr}"
        got = modes_of(down)
        assert got == MODES, {k: (oct(got.get(k, 0)), oct(v)) for k, v in MODES.items()
                              if got.get(k) != v}
        p = subprocess.run(as_user + ["rm", "-rf", down], stderr=subprocess.PIPE, text=True, timeout=10)
        assert p.returncode == 0 and not os.path.exists(down), p.stderr
    finally:
        shutil.rmtree(work)
