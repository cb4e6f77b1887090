"""`loopkit watch` as a new user meets it: what promtool says of /metrics, the page's
messages, uptime as people read it, commands in a config file, and --until-up ending
while a probe waits. Real clients: promtool (Debian's prometheus), http.client, sockets."""
import json
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import hard_timeout_fixture
from watchlab import Watcher, run

_hard_timeout = hard_timeout_fixture(60)


def test_promtool_finds_no_problem_in_the_metrics(tmp_path):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is missing: scripts/deps installs Debian's prometheus package")
    # the latency quantiles come once a probe succeeded: a command that always does
    w = Watcher("-i", "200ms", "cmd:true", db=tmp_path / "h2.db")
    try:
        w.wait_state("cmd:true", "up")
        st, _, body = w.get("/metrics")
        assert st == 200 and b'quantile="0.95"' in body, body
        assert b"# TYPE loopkit_watch_latency_seconds summary\n" in body, body
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=20)
        # promtool lints on stdout/stderr and exits 3 for a quantile label on a gauge
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b""), p
    finally:
        assert w.stop() == 0, w.stderr()
        w.close()


def test_a_foreign_host_is_told_what_works_on_the_watch_page(tmp_path):
    w = Watcher("cmd:true", db=tmp_path / "h.db")
    try:
        st, _, body = w.get("/metrics", headers={"Host": "evil.example"})
        assert st == 403, body
        text = body.decode()
        # the watcher has no --allow-host: the fix named is one that works here
        assert "use an IP address, localhost or NAME.localhost in the URL" in text, text
        assert "start loopkit with --allow-host" not in text, text
        st, _, _ = w.get("/metrics", headers={"Host": f"watch.localhost:{w.port}"})
        assert st == 200
    finally:
        assert w.stop() == 0, w.stderr()
        w.close()


def test_uptime_on_the_page_is_rounded_as_people_read_it(tmp_path):
    # probes 1 and 2 succeed, probe 3 fails, probe 4 waits (an hour): 2 of 3 stays
    count = tmp_path / "n"
    script = (f'n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}; '
              f'[ "$n" -lt 2 ] && exit 0; [ "$n" -eq 2 ] && exit 1; exec sleep 3600')
    cfg = tmp_path / "watch.json"
    cfg.write_text(json.dumps({"targets": [{"name": "flaky", "cmd": script, "interval": "100ms",
                                            "timeout": "1h", "retries": 5}]}))
    w = Watcher("--config", cfg, db=tmp_path / "h.db")
    try:
        deadline = time.monotonic() + 20
        row = w.rows()["flaky"]
        while row["probes"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            row = w.rows()["flaky"]
        assert row["probes"] == 3 and row["failures"] == 1, row
        st, _, body = w.get("/")
        assert st == 200
        page = body.decode()
        assert "66.67%" in page and "66.66%" not in page, page
    finally:
        assert w.stop() == 0, w.stderr()
        w.close()


def test_an_argv_command_is_found_on_path_and_a_missing_one_says_so(tmp_path):
    cfg = tmp_path / "watch.json"
    cfg.write_text(json.dumps({"targets": [{"name": "true", "cmd": ["true"]},
                                           {"name": "missing", "cmd": ["no-such-program-here", "-q"]},
                                           {"name": "path", "cmd": ["/no/such/program"]}]}))
    p = run("--once", "--json", "--retries", "0", "--config", cfg)
    assert p.returncode == 1, (p.stdout, p.stderr)
    rows = {t["name"]: t for t in json.loads(p.stdout)["targets"]}
    assert rows["true"]["state"] == "up", rows["true"]
    assert rows["missing"]["last"]["detail"] == "cannot run no-such-program-here: not found on PATH", rows
    assert rows["path"]["last"]["detail"] == "cannot run /no/such/program: No such file or directory", rows


def test_until_up_ending_while_a_probe_waits_says_so(tmp_path):
    # a listener that accepts (the kernel does) and never answers
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    try:
        p = run("--until-up", "--timeout", "500ms", url)
        assert p.returncode == 1, (p.stdout, p.stderr)
        lines = p.stdout.splitlines()
        assert lines[1].startswith(f"pending  {url}"), p.stdout
        assert "no answer yet: the probe had waited " in lines[1] and "not probed yet" not in p.stdout, p.stdout
        assert re.fullmatch(r"1 target: 0 up, 0 down, 1 pending \(0\.\d\d s\); gave up waiting", lines[-1]), p.stdout
        p = run("--until-up", "--timeout", "500ms", "--json", url)
        assert p.returncode == 1, (p.stdout, p.stderr)
        row = json.loads(p.stdout)["targets"][0]
        assert row["last"] is None and 400 <= row["unanswered_ms"] <= 2000, row
    finally:
        s.close()
