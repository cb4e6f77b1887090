"""loopkit watch's history (issue 15): SQLite in WAL mode, batched writes, kill -9 and
restart, retention by count and age, and a database that is read-only, damaged or on a
full disk (clear error at start; at run time probing goes on in memory, said once).

The history is read back with Python's sqlite3 module, another reader as people would use."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import LOOPKIT, hard_timeout_fixture
from watchlab import Watcher, db_rows, lease_ports, metric, run, services_fixture

_hard_timeout = hard_timeout_fixture(120)
svc = services_fixture()

FLUSH_S = 1.0   # WATCH_FLUSH_MS: a batch at least this often
PRUNE_S = 10.0  # WATCH_PRUNE_MS: retention runs this often (and first after the first batch)


def probes_total(w):
    ms = w.metrics()
    return sum(v for (n, _), v in ms.items() if n == "loopkit_watch_probes_total")


def test_schema_wal_and_every_result_written(svc, tmp_path):
    port, = lease_ports(1)
    svc.tcp_listener(port)
    db = tmp_path / "h.db"
    w = Watcher("-i", "100ms", f"tcp://127.0.0.1:{port}", "tcp://127.0.0.1:1", db=db)
    try:
        time.sleep(1.5)
        assert db_rows(db, "PRAGMA journal_mode") == [("wal",)]
        assert os.path.exists(f"{db}-wal"), "WAL mode keeps a -wal file while open"
        svc.stop("tcp")
        w.wait_state(f"tcp://127.0.0.1:{port}", "down")
        assert w.stop() == 0
        # a clean exit writes what was queued and folds the WAL into the file
        assert not os.path.exists(f"{db}-wal")
    finally:
        w.close()
    targets = dict(db_rows(db, "SELECT name, id FROM targets"))
    assert set(targets) == {f"tcp://127.0.0.1:{port}", "tcp://127.0.0.1:1"}
    up_id = targets[f"tcp://127.0.0.1:{port}"]
    rows = db_rows(db, "SELECT ok, latency_us, status, error FROM results WHERE target = ? ORDER BY ts", (up_id,))
    assert rows[0][0] == 1 and rows[0][3] is None, rows[:3]
    assert rows[-1][0] == 0 and rows[-1][3] == f"connection refused: nothing listens on 127.0.0.1:{port}"
    assert db_rows(db, "SELECT state FROM targets WHERE id = ?", (up_id,)) == [(2,)]  # DOWN, the last change
    # hourly roll-ups agree with the results
    n, ok = db_rows(db, "SELECT count(*), sum(ok) FROM results WHERE target = ?", (up_id,))[0]
    assert db_rows(db, "SELECT sum(n), sum(ok) FROM rollup WHERE target = ?", (up_id,)) == [(n, ok)]
    assert n >= 10


def test_kill_9_loses_at_most_the_last_batch_and_a_restart_continues(svc, tmp_path):
    port, = lease_ports(1)
    svc.tcp_listener(port)
    db = tmp_path / "h.db"
    up, down = f"tcp://127.0.0.1:{port}", "tcp://127.0.0.1:1"
    w = Watcher("-i", "100ms", "--retries", "0", up, down, db=db)
    try:
        time.sleep(1.2)
        svc.stop("tcp")  # the first target goes down half-way
        w.wait_state(up, "down")
        time.sleep(0.8)
        before = probes_total(w)
        time.sleep(FLUSH_S + 0.6)  # everything counted above has been in a batch since
        at_kill = probes_total(w)
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(10)
    finally:
        w.close()
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    n = db_rows(db, "SELECT count(*) FROM results")[0][0]
    assert before <= n <= at_kill + 2 * 20, (before, n, at_kill)
    ids = dict(db_rows(db, "SELECT name, id FROM targets"))
    ok_db, n_db = db_rows(db, "SELECT sum(ok), count(*) FROM results WHERE target = ?", (ids[up],))[0]
    assert 0 < ok_db < n_db, (ok_db, n_db)

    # The restart: same targets, same ids, their last state, and the hour's history.
    w = Watcher("-i", "1s", "--retries", "0", up, down, db=db)
    try:
        rows = w.rows()
        assert rows[up]["state"] == "down" and rows[down]["state"] == "down", rows
        ratio = rows[up]["uptime"]["1h"]
        # the hour's uptime comes from the history: the restart's own probes are one or two
        assert abs(ratio - ok_db / n_db) < 0.05, (ratio, ok_db, n_db)
        assert rows[up]["latency_1h"]["samples"] == min(ok_db, 256)
        time.sleep(1.5)
        # no change: DOWN before the kill, DOWN after (no --on-change storm at restarts)
        assert w.lines == [], w.lines
        assert w.stop() == 0
    finally:
        w.close()
    assert dict(db_rows(db, "SELECT name, id FROM targets")) == ids
    assert db_rows(db, "SELECT count(*) FROM results")[0][0] > n


def test_retention_by_count_and_by_age(tmp_path):
    db = tmp_path / "h.db"
    t = "tcp://127.0.0.1:1"
    w = Watcher("-i", "100ms", t, db=db)
    time.sleep(2)
    assert w.stop() == 0
    w.close()
    first = db_rows(db, "SELECT count(*) FROM results")[0][0]
    assert first >= 10, first
    # By count: one probe at start (-i 1h), retention after the first batch keeps 3.
    w = Watcher("-i", "1h", "--keep", "3", t, db=db)
    time.sleep(FLUSH_S + 0.8)
    assert w.stop() == 0
    w.close()
    assert db_rows(db, "SELECT count(*) FROM results")[0][0] == 3
    # By age: everything older than 2 s goes; the new probe stays.
    time.sleep(2.5)
    start_ms = time.time() * 1000
    w = Watcher("-i", "1h", "--retention", "2s", t, db=db)
    time.sleep(FLUSH_S + 0.8)
    assert w.stop() == 0
    w.close()
    rows = db_rows(db, "SELECT ts FROM results")
    assert len(rows) == 1 and rows[0][0] >= start_ms - 50, rows


@pytest.mark.alone
def test_retention_runs_while_watching(tmp_path):
    db = tmp_path / "h.db"
    w = Watcher("-i", "100ms", "--keep", "5", "tcp://127.0.0.1:1", db=db)
    try:
        time.sleep(PRUNE_S + FLUSH_S + 1.5)
        produced = probes_total(w)
        n = db_rows(db, "SELECT count(*) FROM results")[0][0]
        # 5 kept at the last pass, plus at most what came since (1-2 batches of ~10)
        assert 5 <= n <= 5 + 30 and produced > 60, (n, produced)
        assert w.stop() == 0
    finally:
        w.close()


# ---------------------------------------------------------------------------
# A database that cannot be used: at start, and at run time
# ---------------------------------------------------------------------------


def test_a_damaged_or_foreign_file_is_refused_and_left_alone(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just text long enough to look like a header." * 4)
    before = junk.read_bytes()
    r = run("--db", junk, "--port", "0", "tcp://127.0.0.1:1")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == (f"loopkit watch: history {junk} is damaged or not a loopkit history (open: file is not a "
                        "database); move it away (it is left as it is) or give another --db FILE\n")
    assert junk.read_bytes() == before
    # a real history, cut in the middle
    db = tmp_path / "cut.db"
    w = Watcher("-i", "100ms", "--max-inflight", "64", *[f"tcp://127.0.0.1:{i}" for i in range(1, 41)], db=db)
    time.sleep(2.5)
    assert w.stop() == 0
    w.close()
    size = os.path.getsize(db)
    assert size > 60000, size
    os.truncate(db, 40960)
    r = run("--db", db, "--port", "0", "tcp://127.0.0.1:1")
    assert r.returncode == 1, r
    assert "is damaged or not a loopkit history" in r.stderr and "database disk image is malformed" in r.stderr, \
        r.stderr


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_a_read_only_history_is_refused(tmp_path):
    d = tempfile.mkdtemp(prefix="lk-watch-ro-")  # pytest's tmp_path is private to root
    try:
        os.chmod(d, 0o755)
        db = os.path.join(d, "h.db")
        w = Watcher("-i", "1h", "tcp://127.0.0.1:1", db=db)
        assert w.stop() == 0
        w.close()
        os.chmod(db, 0o644)
        if os.getuid() == 0:  # root writes anything: run as nobody, who may only read it
            kw = {"preexec_fn": as_nobody}
        else:
            os.chmod(db, 0o444)
            kw = {}
        r = subprocess.run([LOOPKIT, "watch", "--port", "0", "--db", db, "tcp://127.0.0.1:1"],
                           capture_output=True, text=True, timeout=20, **kw)
        assert r.returncode == 1, r
        assert r.stderr == (f"loopkit watch: history {db} cannot be written (open: the file is read-only to this "
                            "user); fix the permissions of the file and its directory, or give another --db FILE\n")
    finally:
        shutil.rmtree(d)


def small_tmpfs(size, mnt):
    """A command prefix: a private mount namespace with a tmpfs of size on mnt (root only),
    the command exec'd there (it keeps the pid)."""
    if os.getuid() != 0:
        pytest.fail("a full disk is a real tmpfs mounted in a private namespace: run the suite as root "
                    "(as `make test` in CI does)")
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", size, str(mnt)]


def test_a_full_disk_at_start_is_a_clear_error(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([*small_tmpfs("8k", mnt), LOOPKIT, "watch", "--port", "0", "--db", str(mnt / "h.db"),
                        "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"loopkit watch: history {mnt}/h.db: the disk is full ("), r.stderr
    assert "No space left on device" in r.stderr and "free some space or give another --db FILE" in r.stderr


def test_a_disk_that_fills_while_watching_keeps_probing_and_says_so_once(svc, tmp_path):
    port, = lease_ports(1)
    svc.tcp_listener(port)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    targets = [f"tcp://127.0.0.1:{port}"] + [f"tcp://127.0.0.1:{i}" for i in range(1, 21)]
    w = Watcher("-i", "100ms", "--retries", "0", *targets, db=mnt / "h.db", prefix=small_tmpfs("96k", mnt))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and metric(w.metrics(), "loopkit_watch_history_failing") != 1:
            time.sleep(0.2)
        assert metric(w.metrics(), "loopkit_watch_history_failing") == 1, w.stderr()
        n1 = probes_total(w)
        # probing goes on, and the page still follows the service
        svc.stop("tcp")
        w.wait_state(targets[0], "down", timeout=10)
        time.sleep(1.5)
        assert probes_total(w) > n1 + 20
        assert metric(w.metrics(), "loopkit_watch_history_dropped_total") > 0
        assert w.stop() == 0
        err = w.stderr()
    finally:
        w.close()
    lines = err.splitlines()
    full = [ln for ln in lines if "the disk is full" in ln]
    assert len(full) == 1, lines  # said once, not once per batch
    assert full[0].startswith(f"loopkit: history {mnt}/h.db: the disk is full (writing results: "), full
    assert full[0].endswith("probing goes on in memory (the page and /metrics are unaffected), and results are "
                            "not saved until it is writable again")


def test_the_default_history_lives_in_the_state_directory(tmp_path):
    for env, want in ((dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
                       tmp_path / "state" / "loopkit" / "watch.db"),
                      (dict({k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"},
                            HOME=str(tmp_path / "home")),
                       tmp_path / "home" / ".local" / "state" / "loopkit" / "watch.db")):
        w = Watcher("-i", "1h", "--retries", "0", "tcp://127.0.0.1:1", env=env)
        try:
            w.wait_state("tcp://127.0.0.1:1", "down")
            assert w.stop() == 0
        finally:
            w.close()
        assert want.exists(), list(tmp_path.rglob("*"))
        assert (want.parent.stat().st_mode & 0o777) == 0o700  # created for the user alone
        assert db_rows(want, "SELECT name FROM targets") == [("tcp://127.0.0.1:1",)]
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_STATE_HOME", "HOME")}
    r = run("--port", "0", "tcp://127.0.0.1:1", env=env)
    assert r.returncode == 1 and "neither XDG_STATE_HOME nor HOME is set; give --db FILE" in r.stderr, r.stderr
