"""A short wrk load run: no socket errors, every response a 200."""
import re
import shutil
import subprocess
import time

import pytest

from conftest import assert_alive, hard_timeout_fixture, need_tool

_hard_timeout = hard_timeout_fixture(30)

WRK = shutil.which("wrk") or "/usr/bin/wrk"


@pytest.fixture(autouse=True)
def _wrk_installed():
    need_tool("wrk", "wrk")


def run_wrk(url, *args, timeout=20):
    p = subprocess.run([WRK, "-t1", "-c16", "-d2s", *args, url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def requests_done(out):
    m = re.search(r"(\d+) requests in ", out)
    assert m, out
    return int(m.group(1))


@pytest.mark.alone
def test_wrk_1k_file(start, root):
    (root / "1k.bin").write_bytes(bytes(range(256)) * 4)
    s = start("--quiet")
    rc, out = run_wrk(s.url + "1k.bin")
    assert rc == 0, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    n = requests_done(out)
    assert n > 1000, out
    assert_alive(s)


@pytest.mark.alone
def test_wrk_with_access_log(start, root):
    # Default logging (common) under load: still no errors, and one line per request.
    (root / "1k.bin").write_bytes(b"k" * 1024)
    s = start()
    rc, out = run_wrk(s.url + "1k.bin", "--timeout", "2s")
    assert rc == 0, out
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    n = requests_done(out)
    assert n > 0
    assert_alive(s)
    def count():
        return sum(1 for ln in s.stderr().splitlines()
                   if '"GET /1k.bin HTTP/1.1" 200 1024 ' in ln)
    last, stable = -1, 0
    for _ in range(40):  # wait until the log stops growing (at most ~4 s)
        c = count()
        stable = stable + 1 if c == last else 0
        if stable >= 3:
            break
        last = c
        time.sleep(0.1)
    lines = count()
    # wrk counts only completed responses; requests in flight at its stop may add a few.
    assert n <= lines <= n + 64, (n, lines)
