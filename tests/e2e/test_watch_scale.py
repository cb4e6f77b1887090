"""loopkit watch with thousands of targets (issue 15): every target probed, never more
probes in flight than --max-inflight or the descriptor limit allows, memory bounded.

The target is one HTTP server of the test's own (asyncio) with one path per target; it
holds each answer a little and records how many requests it had at once, and which paths
it saw."""
import json
import subprocess
import time

import pytest

from conftest import LOOPKIT, hard_timeout_fixture, measures, proc_status_kb
from watchlab import PY, Watcher, lease_ports, run, wait_listening

_hard_timeout = hard_timeout_fixture(180)

COUNTING_SERVER = r"""
import asyncio, json, sys
port, hold = int(sys.argv[1]), float(sys.argv[2])
state = {"now": 0, "max": 0, "paths": {}}

async def handle(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except Exception:
        writer.close()
        return
    path = head.split(b" ", 2)[1].decode()
    if path == "/_stats":
        body = json.dumps({"max": state["max"], "paths": state["paths"]}).encode()
        state["max"] = 0
    else:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        state["paths"][path] = state["paths"].get(path, 0) + 1
        await asyncio.sleep(hold)
        state["now"] -= 1
        body = b"ok"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    try:
        await writer.drain()
    except Exception:
        pass
    writer.close()

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
"""


@pytest.fixture
def counting_server(tmp_path):
    port, = lease_ports(1)
    script = tmp_path / "server.py"
    script.write_text(COUNTING_SERVER)
    p = subprocess.Popen([PY, str(script), str(port), "0.02"], stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "server.log", "wb"))
    wait_listening(port, proc=p)

    def stats():
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/_stats")
        doc = json.loads(c.getresponse().read())
        c.close()
        return doc

    yield port, stats
    p.terminate()
    p.wait(10)


def config(tmp_path, port, n):
    cfg = tmp_path / "many.json"
    cfg.write_text(json.dumps({"targets": [{"name": f"p{i}", "url": f"http://127.0.0.1:{port}/{i}"}
                                           for i in range(n)]}))
    return cfg


@pytest.mark.alone
def test_two_thousand_targets_once_with_a_bounded_number_in_flight(tmp_path, counting_server, figure):
    port, stats = counting_server
    n, inflight = 2000, 50
    t0 = time.monotonic()
    r = run("--once", "--json", "--config", config(tmp_path, port, n), "--max-inflight", inflight, timeout=120)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["up"] == n, {k: doc[k] for k in ("up", "down", "pending")}
    st = stats()
    assert sorted(st["paths"]) == sorted(f"/{i}" for i in range(n))
    assert all(v == 1 for v in st["paths"].values())
    # never more than --max-inflight at once, and the bound is used (the server holds each 20 ms)
    assert inflight // 2 <= st["max"] <= inflight, st["max"]
    # 2000 probes of 20 ms, 50 at a time: about 0.8 s of holding
    assert took < 30, took
    figure(f"--once of 2,000 HTTP targets, 50 in flight: {took:.2f} s, at most {st['max']} at once")


@pytest.mark.alone
def test_the_descriptor_limit_bounds_the_probes_in_flight(tmp_path, counting_server):
    port, stats = counting_server
    n = 600
    # 256 descriptors: (256 - 64 kept for the page, history and hooks) / 2 = 96 probes at most
    r = subprocess.run(["prlimit", "--nofile=256:256", "--", LOOPKIT, "watch", "--once", "--json", "--config",
                        str(config(tmp_path, port, n)), "--max-inflight", "1000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["up"] == n
    st = stats()
    assert 48 <= st["max"] <= 96, st["max"]


@measures
@pytest.mark.alone
def test_a_thousand_targets_each_second_stay_small(tmp_path, counting_server, figure):
    port, stats = counting_server
    w = Watcher("--config", config(tmp_path, port, 1000), "-i", "1s", db=tmp_path / "h.db")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and w.status()["up"] < 1000:
            time.sleep(0.5)
        assert w.status()["up"] == 1000
        time.sleep(5)
        rss = proc_status_kb(w.pid, "VmRSS")
        figure(f"RSS with 1,000 targets probed every second: {rss} KiB")
        assert rss < 32 * 1024, f"RSS {rss} KiB with 1,000 targets"
        st = stats()
        # every target about once a second
        per = sorted(st["paths"].values())
        assert per[0] >= 4, per[:5]
        page = w.get("/")[2]
        assert page.count(b"<tr id=") == 1000
        assert w.stop() == 0
    finally:
        w.close()
