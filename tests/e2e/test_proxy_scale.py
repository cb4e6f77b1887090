"""loopkit proxy at scale: 10,000 idle proxied pairs within 8 KiB each, and descriptor
exhaustion that pauses instead of failing (checked before and after)."""
import resource
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from proxyutil import Proxy, Upstream, echo, fd_kinds, measures, rss_kib

PAIRS = 10_000
PAIR_BUDGET_KIB = 8  # the bound: memory per idle proxied connection pair

HOLDER = textwrap.dedent("""
    import resource, selectors, socket, sys
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    print(ls.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    held = []
    while True:
        for key, _ in sel.select():
            c, _ = ls.accept()
            held.append(c)
""")


def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@measures
def test_ten_thousand_idle_pairs_fit_in_8_kib_each():
    """Each pair holds two descriptors in the proxy: with a hard limit of 20,000 (this
    machine's; raising it needs CAP_SYS_RESOURCE), 10,000 pairs are spread over two
    proxy processes of 5,000 and their memory added up."""
    hard = raise_nofile()
    nproc = 1 if hard > 2 * PAIRS + 1000 else 2
    per_proc = PAIRS // nproc
    assert hard >= PAIRS + 1000, "the test process holds 10,000 client sockets"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    procs, socks, warm = [], [], []
    try:
        up_port = int(holder.stdout.readline())
        for _ in range(nproc):
            procs.append(Proxy(f"127.0.0.1:{up_port}"))
        for p in procs:
            warm += [p.connect() for _ in range(10)]
        time.sleep(0.3)
        base = [(rss_kib(p.pid), fd_kinds(p.pid)[0]) for p in procs]
        for p in procs:
            for _ in range(per_proc):
                socks.append(p.connect())
        for p, (_, bs) in zip(procs, base):
            deadline = time.monotonic() + 60
            while fd_kinds(p.pid)[0] < bs + 2 * per_proc and time.monotonic() < deadline:
                time.sleep(0.2)
            assert fd_kinds(p.pid)[0] == bs + 2 * per_proc  # every pair is connected upstream
            st, body = p.api("GET", "/metrics")
            assert f'loopkit_proxy_connections_open{{proxy="proxy"}} {per_proc + 10}' in body
        grown = sum(rss_kib(p.pid) - b[0] for p, b in zip(procs, base))
        per_pair = grown / (per_proc * nproc)
        print(f"RSS per idle pair: {per_pair:.2f} KiB over {per_proc * nproc} pairs")
        assert per_pair <= PAIR_BUDGET_KIB, per_pair
        for s in socks + warm:
            s.close()
        socks, warm = [], []
        for p, (_, bs) in zip(procs, base):
            deadline = time.monotonic() + 60
            while fd_kinds(p.pid)[0] > bs - 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert fd_kinds(p.pid)[0] == bs - 20  # every pair closed, the warm-up ones too
    finally:
        for s in socks + warm:
            s.close()
        holder.kill()
        holder.wait()
        for p in procs:
            alive = p.proc.poll() is None
            assert p.stop() == 0 and alive, p.stderr()


@pytest.mark.alone
def test_descriptor_exhaustion_pauses_and_recovers():
    u = Upstream(echo)
    p = Proxy(u.addr, nofile=64)
    try:
        socks = []
        for _ in range(120):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", p.port()))
            socks.append(s)
        time.sleep(1.0)
        err = p.stderr()
        assert "out of file descriptors" in err or "no socket for a new connection" in err, err
        assert "raise the limit with ulimit -n" in err
        ok = 0
        for s in socks[:10]:
            s.sendall(b"ping")
            try:
                ok += s.recv(10) == b"ping"
            except OSError:
                pass
        assert ok == 10  # the first pairs were made and still relay
        for s in socks:
            s.close()
        time.sleep(1.0)
        assert p.proc.poll() is None
        s = p.connect()
        s.sendall(b"again")
        assert s.recv(10) == b"again"
        s.close()
        st, body = p.api("GET", "/proxies/proxy")
        assert st == 200 and body["enabled"] is True
    finally:
        assert p.stop() == 0
        u.close()
