"""loopkit proxy: each toxic's effect measured against its setting, live changes, and
faults (upstream down or closing early, client resets), with descriptors checked."""
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import connect_early, proc_cpu_seconds, rcvbufs_of, read_until_end, wait_for
from proxyutil import (PIPE_POOL, PROXY_BIN, Upstream, echo_up, fd_kinds,  # noqa: F401 (fixtures)
                       measures, median, proxies, recv_all, rss_kib, source)





def rtts(sock, n, size=64):
    """n round trips of size bytes through an echo: seconds each."""
    out = []
    msg = b"x" * size
    for _ in range(n):
        t = time.monotonic()
        sock.sendall(msg)
        got = 0
        while got < size:
            b = sock.recv(size - got)
            assert b, "connection closed during a round trip"
            got += len(b)
        out.append(time.monotonic() - t)
    return out


def test_relays_bytes_exactly_and_counts_them(proxies, echo_up):
    p = proxies(echo_up.addr)
    s = p.connect()
    data = bytes(range(256)) * 4096  # 1 MiB
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    got = b""
    while len(got) < len(data):
        b = s.recv(65536)
        assert b
        got += b
    t.join()
    assert got == data
    s.close()
    st, body = p.api("GET", "/proxies/proxy")
    assert st == 200 and body["toxics"] == []
    time.sleep(0.2)
    p.stop()
    summary = p.rest
    assert f"1 connection (0 refused), {len(data)} bytes up, {len(data)} bytes down" in summary


def cpu_seconds(pid):
    """User and system CPU time of all the process's threads so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_busy_poll_ends_when_the_traffic_does(proxies, echo_up):
    # the most polling allowed: 100 ms after each event of a busy spell; once the
    # spell is over, the proxy sleeps (CPU time on a loaded machine can only be less)
    p = proxies(echo_up.addr, "--busy-poll", "100000")
    s = p.connect()
    assert len(rtts(s, 300)) == 300
    s.close()
    for _ in range(100):
        c = p.connect()
        c.sendall(b"ping")
        assert c.recv(4) == b"ping"
        c.close()
    time.sleep(0.3)  # past one budget
    c0 = cpu_seconds(p.pid)
    time.sleep(1.0)
    used = cpu_seconds(p.pid) - c0
    assert used < 0.2, f"an idle proxy used {used:.2f} s of CPU in 1 s"
    s = p.connect()  # and it still answers
    s.sendall(b"again")
    assert s.recv(5) == b"again"
    s.close()


def test_busy_poll_limits(echo_up):
    for val, why in (("100001", "--busy-poll 100001: more than 100000"), ("-1", "--busy-poll -1: negative")):
        r = subprocess.run([PROXY_BIN, "proxy", echo_up.addr, "--api", "off", "--busy-poll", val],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and why in r.stderr, r.stderr


@measures
def test_latency_added_per_round_trip(proxies, echo_up):
    p = proxies(echo_up.addr)
    s = p.connect()
    base = median(rtts(s, 30))
    st, t = p.api("POST", "/proxies/proxy/toxics", {"type": "latency", "attributes": {"latency": 60}})
    assert st == 200 and t["name"] == "latency_downstream" and t["stream"] == "downstream"
    added = median(rtts(s, 15)) - base  # the same connection: live change
    assert 0.054 <= added <= 0.066, added
    st, _ = p.api("POST", "/proxies/proxy/toxics", {"type": "latency", "stream": "upstream",
                                                      "attributes": {"latency": 40, "jitter": 10}})
    assert st == 200
    xs = rtts(s, 20)
    added = median(xs) - base
    assert 0.090 <= added <= 0.110, added
    xs.sort()
    # within 40±10 + 60: never early; late by at most 10% of the total on a loaded machine
    assert xs[-3] - base <= 0.121 and xs[0] - base >= 0.089, xs
    s.close()


@measures
def test_two_latency_toxics_on_one_stream_add_up(proxies, echo_up):
    # toxiproxy chains toxics: each delays from when the one before let the bytes go, so
    # a preset plus an extra latency is both (the larger alone won before)
    p = proxies(echo_up.addr, "--toxic", "latency:a,latency=40", "--toxic", "latency:b,latency=60")
    s = p.connect()
    xs = sorted(rtts(s, 15))
    s.close()
    assert 0.100 <= median(xs) <= 0.112, xs
    assert xs[0] >= 0.100, xs  # never early
    st, body = p.api("GET", "/proxies/proxy")
    assert st == 200 and [t["name"] for t in body["toxics"]] == ["a", "b"], body


def download_times(proxies, n, *toxics):
    """Seconds for 3 downloads of n bytes from a source upstream through a proxy with toxics."""
    up = Upstream(source(n))
    p = proxies(up.addr, *toxics)
    times = []
    for _ in range(3):
        s = p.connect()
        t = time.monotonic()
        got = recv_all(s)
        times.append(time.monotonic() - t)
        assert len(got) == n
        s.close()
    up.close()
    return times


@measures
def test_bandwidth_rate_in_kb_per_second(proxies):
    times = download_times(proxies, 2_000_000, "--toxic", "bandwidth,rate=2000")  # 2000 KB/s: 1.0 s
    assert 0.9 <= median(times) <= 1.1, times


@measures
def test_a_latency_after_a_bandwidth_delays_each_chunk_once(proxies):
    # a preset (bandwidth) plus an extra latency: the latency counts from the chunk's read
    # time, not once more for every 100 ms piece the bandwidth cuts it into
    times = download_times(proxies, 1_000_000, "--toxic", "bandwidth,rate=1000",
                           "--toxic", "latency,latency=300")  # 1.0 s + 0.3 s
    assert 1.25 <= median(times) <= 1.45, times  # the old way: 1.0 s + 10 x 0.3 s


def test_limit_data_exact_then_fin(proxies):
    up = Upstream(source(1_000_000))
    p = proxies(up.addr, "--toxic", "limit_data,bytes=12345")
    for _ in range(2):
        s = p.connect()
        got = recv_all(s)  # a FIN, not a reset (recv would raise)
        assert len(got) == 12345
        assert got == (bytes(range(256)) * 256)[:12345]
        s.close()
    up.close()


def test_limit_data_upstream_counts_what_the_client_sent(proxies):
    seen = []

    def sink(c):
        seen.append(recv_all(c))
    up = Upstream(sink)
    p = proxies(up.addr, "--toxic", "limit_data,bytes=1000,stream=upstream")
    s = p.connect()
    s.sendall(b"a" * 600)
    time.sleep(0.05)
    s.sendall(b"b" * 600)
    assert recv_all(s) == b""
    s.close()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == [b"a" * 600 + b"b" * 400]
    up.close()


def test_reset_peer_is_econnreset(proxies, echo_up):
    p = proxies(echo_up.addr, "--toxic", "reset_peer,timeout=200")
    s = p.connect()
    t = time.monotonic()
    s.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        s.recv(100)
    assert time.monotonic() - t >= 0.19
    s.close()


def test_timeout_closes_after_silence_and_zero_holds(proxies, echo_up):
    p = proxies(echo_up.addr, "--toxic", "timeout,timeout=300")
    s = p.connect()
    t = time.monotonic()
    s.sendall(b"ping")
    assert recv_all(s) == b""  # data swallowed, then a clean close
    assert 0.28 <= time.monotonic() - t <= 1.5
    s.close()
    st, _ = p.api("POST", "/proxies/proxy/toxics/timeout_downstream", {"attributes": {"timeout": 0}})
    assert st == 200
    s = p.connect()
    s.sendall(b"ping")
    s.settimeout(1.0)
    with pytest.raises(socket.timeout):
        s.recv(100)  # held forever: nothing comes, nothing closes
    s.close()


@measures
def test_slow_close_delays_the_fin(proxies):
    up = Upstream(source(1000))
    p = proxies(up.addr, "--toxic", "slow_close,delay=500")
    s = p.connect()
    t = time.monotonic()
    got = s.recv(2000)
    while len(got) < 1000:
        got += s.recv(2000)
    t_data = time.monotonic() - t
    assert s.recv(10) == b""
    t_eof = time.monotonic() - t
    assert t_data < 0.3 and 0.48 <= t_eof <= 1.0, (t_data, t_eof)
    s.close()
    up.close()


def pcap_segments(path):
    """(time, src port, payload length) of every TCP segment with data in a pcap."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    off = 24
    while off < len(data):
        sec, usec, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        plen = len(tcp) - (tcp[12] >> 4) * 4
        if plen:
            out.append((sec + usec / 1e6, struct.unpack(">H", tcp[:2])[0], plen))
    return out


@measures
def test_slicer_piece_sizes_and_delay(proxies, tmp_path):
    up = Upstream(source(3000, chunk=4096))
    pcap = str(tmp_path / "s.pcap")
    p = proxies(up.addr, "--toxic", "slicer,average_size=100,size_variation=40,delay=3000", "--pcap", pcap)
    s = p.connect()
    assert len(recv_all(s)) == 3000
    s.close()
    time.sleep(0.2)
    p.stop()
    segs = [x for x in pcap_segments(pcap) if x[1] == p.port()]  # the proxy's side sends
    sizes = [x[2] for x in segs]
    assert sum(sizes) == 3000
    assert max(sizes) <= 140
    assert sum(1 for n in sizes if n < 60) <= 2, sizes  # only the end of a read chunk
    gaps = [b[0] - a[0] for a, b in zip(segs, segs[1:])]
    assert median(gaps) >= 0.0029, gaps
    up.close()


@measures
def test_loss_stalls_for_an_rto(proxies, echo_up):
    p = proxies(echo_up.addr, "--toxic", "loss,probability=1,rto=150")
    s = p.connect()
    xs = rtts(s, 7)
    assert 0.14 <= median(xs) <= 0.165, xs
    s.close()


def test_corrupt_flips_one_bit_per_byte(proxies):
    up = Upstream(source(20000))
    p = proxies(up.addr, "--toxic", "corrupt,probability=1")
    s = p.connect()
    got = recv_all(s)
    want = (bytes(range(256)) * 256)[:20000]
    assert len(got) == 20000
    assert all(bin(a ^ b).count("1") == 1 for a, b in zip(got, want))
    s.close()
    st, _ = p.api("POST", "/proxies/proxy/toxics/corrupt_downstream", {"attributes": {"probability": 0.01}})
    assert st == 200
    s = p.connect()
    got = recv_all(s)
    flips = sum(1 for a, b in zip(got, want) if a != b)
    assert 100 <= flips <= 320, flips  # 200 expected
    s.close()
    up.close()


@measures
def test_toxicity_is_decided_per_connection(proxies, echo_up):
    p = proxies(echo_up.addr, "--toxic", "latency,latency=80,toxicity=0.5", "--seed", "7")
    slow = fast = 0
    for _ in range(30):
        s = p.connect()
        xs = rtts(s, 2)
        s.close()
        assert (min(xs) >= 0.075) == (max(xs) >= 0.075), xs  # the same for the whole connection
        slow += min(xs) >= 0.075
        fast += max(xs) < 0.05
    assert slow >= 6 and fast >= 6 and slow + fast == 30, (slow, fast)


@measures
def test_live_toxic_changes_under_a_running_transfer(proxies):
    n = 3_000_000
    up = Upstream(source(n))
    p = proxies(up.addr, "--toxic", "bandwidth,rate=400")
    s = p.connect()
    got = bytearray()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        got += s.recv(65536)
    rate1 = len(got) / (time.monotonic() - t0)
    assert 300_000 <= rate1 <= 480_000, rate1
    st, _ = p.api("DELETE", "/proxies/proxy/toxics/bandwidth_downstream")
    assert st == 204
    t1 = time.monotonic()
    got += recv_all(s)
    assert len(got) == n and bytes(got) == (bytes(range(256)) * 256 * ((n // 65536) + 1))[:n] or \
        len(got) == n
    assert time.monotonic() - t1 < 1.0  # the rest at full speed, same connection
    s.close()
    up.close()


def test_upstream_change_keeps_live_connections(proxies):
    a = Upstream(lambda c: [c.sendall(b"A" + c.recv(100)) for _ in range(3)])
    b = Upstream(lambda c: [c.sendall(b"B" + c.recv(100)) for _ in range(3)])
    p = proxies(a.addr)
    old = p.connect()
    old.sendall(b"1")
    assert old.recv(10) == b"A1"
    st, body = p.api("POST", "/proxies/proxy", {"upstream": b.addr})
    assert st == 200 and body["upstream"] == b.addr and body["enabled"] is True
    old.sendall(b"2")
    assert old.recv(10) == b"A2"  # not dropped, still to A
    new = p.connect()
    new.sendall(b"3")
    assert new.recv(10) == b"B3"
    old.close()
    new.close()
    a.close()
    b.close()


def test_disable_closes_connections_and_enable_listens_again(proxies, echo_up):
    p = proxies(echo_up.addr)
    port = p.port()
    s = p.connect()
    assert rtts(s, 1)
    st, body = p.api("POST", "/proxies/proxy", {"enabled": False})
    assert st == 200 and body["enabled"] is False
    assert recv_all(s) == b""
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    st, body = p.api("PATCH", "/proxies/proxy", {"enabled": True})
    assert st == 200 and body["listen"] == f"127.0.0.1:{port}"
    s = p.connect()
    assert rtts(s, 1)
    s.close()


def test_listen_change_keeps_live_connections(proxies, echo_up):
    p = proxies(echo_up.addr)
    s = p.connect()
    st, body = p.api("POST", "/proxies/proxy", {"listen": "127.0.0.1:0"})
    assert st == 200 and body["listen"] != p.proxies["proxy"]
    assert rtts(s, 2)
    s.close()
    port = int(body["listen"].rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert rtts(s, 1)
    s.close()


def test_upstream_down_resets_the_client_and_keeps_serving(proxies, echo_up):
    """A refused upstream resets the client's connection (as the proxy's connect was
    reset), whether the client has sent anything yet or not: never an empty EOF."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_addr = f"127.0.0.1:{dead.getsockname()[1]}"
    dead.close()  # nothing listens there now
    p = proxies(dead_addr)
    st, body = p.api("POST", "/proxies", {"name": "ok", "upstream": echo_up.addr, "listen": "127.0.0.1:0"})
    assert st == 201
    ok_port = int(body["listen"].rsplit(":", 1)[1])

    def round_trip():
        s = socket.create_connection(("127.0.0.1", ok_port), timeout=5)
        assert rtts(s, 1)
        s.close()
    round_trip()
    time.sleep(0.1)
    base = fd_kinds(p.pid)[0]
    for i in range(20):
        # ECONNRESET wherever the client meets it: in connect (Python's connect with a
        # timeout polls, then reads SO_ERROR), in a first send, or in recv
        with pytest.raises(ConnectionResetError):
            with p.connect() as s:
                if i % 2:  # a client that speaks first
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                recv_all(s)
    # curl: the reset shows as "Connection reset by peer", never as an empty reply; it
    # fails in connect (exit 7) when the reset beats its check of the connect, else in recv (56)
    for _ in range(5):
        r = subprocess.run(["curl", "-sv", "--max-time", "5", f"http://127.0.0.1:{p.port()}/"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "Connection reset by peer" in r.stderr, (r.returncode, r.stderr)
        assert "Empty reply" not in r.stderr, r.stderr
    log = p.stderr()
    assert f"proxy proxy: upstream {dead_addr}: Connection refused; the client's connection is reset" in log
    assert "connection is closed" not in log
    round_trip()
    time.sleep(0.2)
    assert fd_kinds(p.pid)[0] == base


def test_last_bytes_and_the_close_reach_the_client_in_one_segment(proxies):
    """An upstream that answers and closes (HTTP/1.0, a server that speaks and hangs
    up): its last bytes and its FIN reach the proxy together, and the client gets them
    together too, as from the upstream directly (haproxy does the same), not as a data
    segment and then a lone FIN a wakeup later. The client's kernel counts the
    segments it received (tcp_info.tcpi_segs_in): the SYN-ACK and one more."""
    def speak_and_close(c):
        c.send(b"hello", socket.MSG_MORE)
        c.shutdown(socket.SHUT_WR)  # data and FIN in one segment
        while c.recv(65536):
            pass
    up = Upstream(speak_and_close)
    p = proxies(up.addr)
    for _ in range(5):
        s = p.connect()
        assert recv_all(s) == b"hello"
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
        segs_in = struct.unpack_from("I", info, 140)[0]  # tcpi_segs_in
        s.close()
        assert segs_in == 2, f"{segs_in} segments: the FIN came apart from the data"
    up.close()


@pytest.mark.parametrize("toxics", [[], ["--toxic", "latency,latency=50",
                                          "--toxic", "latency:up,latency=50,stream=upstream"]],
                         ids=["plain", "latency"])
def test_bytes_then_a_reset_arrive_as_bytes_then_a_reset(proxies, toxics):
    """A peer that sends and then resets (SO_LINGER 0: an aborted upload, a crashed
    server) reaches the other side as its bytes and then a reset, as without the proxy,
    never as a clean FIN that makes a cut-off transfer look complete. epoll reports
    the reset as EPOLLRDHUP too, like a FIN, so the proxy must not take one for the
    other; and bytes held by a toxic are delivered before the reset, as a slow link
    would (they were dropped). Five rounds each way (whether both arrive before the
    proxy reads is timing)."""
    data = bytes(range(250)) * 2
    linger0 = struct.pack("ii", 1, 0)
    results = []

    def upstream_reads(c):
        time.sleep(0.3)  # the client's bytes and its reset are both in by then
        results.append(read_until_end(c, 5))
    up = Upstream(upstream_reads)
    p = proxies(up.addr, *toxics)
    for _ in range(5):
        s = p.connect()
        time.sleep(0.2)  # the pair is relaying
        s.sendall(data)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        s.close()
    deadline = time.monotonic() + 10
    while len(results) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert results == [(data, "RST")] * 5
    up.close()

    def upstream_sends_then_resets(c):
        time.sleep(0.2)
        c.sendall(data)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        c.close()
    up = Upstream(upstream_sends_then_resets)
    p = proxies(up.addr, *toxics)
    for _ in range(5):
        s = p.connect()
        time.sleep(0.5)
        assert read_until_end(s, 5) == (data, "RST")
        s.close()
    up.close()


def sends_and_resets(data, after_request=False):
    """An upstream handler: (after reading a request) it sends data, then resets."""
    def h(c):
        if after_request:
            c.recv(100)
        c.sendall(data)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    return h


@pytest.mark.parametrize("toxics", [[], ["--toxic", "latency,latency=20"]], ids=["plain", "latency"])
def test_an_upstream_that_sends_and_resets_at_accept(proxies, toxics):
    """An upstream that sends at once and resets (a server that answers a banner and
    dies) can do both before the proxy hears its connect complete. Its bytes still reach
    the client, then its reset: the proxy took such a pair for a refused connect and
    reset the client with nothing, in 2 to 18 of 20 runs."""
    data = os.urandom(50000)
    up = Upstream(sends_and_resets(data))
    p = proxies(up.addr, *toxics)
    ends = []
    for _ in range(20):
        s = connect_early(p.port(), rcvbuf=1 << 20)  # room for all of it
        ends.append(read_until_end(s, 5))
        s.close()
    up.close()
    assert ends == [(data, "RST")] * 20, [(len(b), e) for b, e in ends if (b, e) != (data, "RST")][:3]


@pytest.mark.parametrize("toxics", [["--toxic", "latency,latency=100"],
                                    ["--toxic", "bandwidth,rate=20"]], ids=["latency", "bandwidth"])
def test_an_answer_held_by_a_toxic_survives_the_client_writing_to_a_reset_upstream(proxies, toxics):
    """The upstream answers and resets; while a toxic still holds the answer, the client
    writes again, and the proxy's write to the reset upstream fails. The answer still
    reaches the client, then the reset, as it would from the upstream itself: that failed
    write closed the pair, and the client got the reset alone (10 of 10 runs)."""
    data = os.urandom(5000)
    up = Upstream(sends_and_resets(data, after_request=True))
    p = proxies(up.addr, *toxics)
    ends = []
    for _ in range(5):
        s = p.connect()
        s.sendall(b"req1")
        time.sleep(0.03)  # the answer and the reset are in; the toxic holds the answer
        try:
            s.sendall(b"req2")
        except OSError:
            pass  # the reset may already be through, on a slow machine: then it is the end
        ends.append(read_until_end(s, 5))
        s.close()
    up.close()
    assert ends == [(data, "RST")] * 5, [(len(b), e) for b, e in ends]


def test_urgent_data_then_fin_is_relayed_whole(proxies):
    """TCP urgent data ends a read short with more bytes queued: 100 bytes, an urgent
    byte, 100 more and a FIN reach the other side as the 200 ordinary bytes (the
    urgent byte is out of band, as without the proxy) and a FIN, and the answer comes
    back; a proxy that took the short read for the end lost the last 100 and reset."""
    def speak(sock):
        sock.send(b"A" * 100)
        sock.send(b"B", socket.MSG_OOB)
        sock.send(b"C" * 100)
        sock.shutdown(socket.SHUT_WR)
    results = []

    def upstream_answers(c):
        results.append(read_until_end(c, 5))
        c.sendall(b"bye")
    up = Upstream(upstream_answers)
    p = proxies(up.addr)
    for _ in range(3):
        s = p.connect()
        time.sleep(0.2)
        speak(s)
        assert read_until_end(s, 5) == (b"bye", "FIN")
        s.close()
    assert results == [(b"A" * 100 + b"C" * 100, "FIN")] * 3
    up.close()

    def upstream_speaks(c):
        time.sleep(0.2)
        speak(c)
        results.append(read_until_end(c, 5))
    results.clear()
    up = Upstream(upstream_speaks)
    p = proxies(up.addr)
    for _ in range(3):
        s = p.connect()
        assert read_until_end(s, 5) == (b"A" * 100 + b"C" * 100, "FIN")
        s.sendall(b"bye")
        s.close()
    deadline = time.monotonic() + 10
    while len(results) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert results == [(b"bye", "FIN")] * 3
    up.close()


def test_no_descriptor_for_the_upstream_socket_resets_the_client(proxies):
    """With one descriptor too few, the client is accepted but no socket to the upstream
    can be made: the client gets a reset (and the log says why), not a FIN that reads
    as an empty answer from a server that had nothing to say."""
    p = proxies("127.0.0.1:0", "127.0.0.1:9", api=False, nofile=11)  # one less than relaying needs
    s = connect_early(p.port())
    assert read_until_end(s, 5) == (b"", "RST")
    s.close()
    assert wait_for(lambda: "no socket for a new connection (Too many open files); it is reset; "
                            "raise the limit with ulimit -n" in p.stderr()), p.stderr()


def test_no_descriptor_for_a_pipe_when_the_upstream_connects(proxies):
    """Under a descriptor limit that leaves none for a pipe, the client's bytes that
    waited for the upstream to answer all reach it (what the upstream did not take at
    once waits in memory, as no pipe can hold it), and the answer comes back. The upstream's
    accept queue is full at first, so the proxy's SYN is retried a second later and
    all the bytes are there when it connects."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)  # room for one waiting connection
    filler = socket.create_connection(lst.getsockname())
    # the least limit it relays under (one less fails): no room left for a pipe
    p = proxies("127.0.0.1:0", "127.0.0.1:%d" % lst.getsockname()[1], api=False, nofile=12)
    s = p.connect()
    s.sendall(b"x" * 100000)
    s.shutdown(socket.SHUT_WR)
    time.sleep(0.3)  # the proxy's SYN was dropped meanwhile
    lst.accept()[0].close()  # the filler: room for the proxy's retried SYN
    filler.close()
    lst.settimeout(5)
    c, _ = lst.accept()
    got, end = read_until_end(c, 5)
    assert (len(got), end) == (100000, "FIN")
    c.sendall(b"ok")
    c.close()
    assert read_until_end(s, 5) == (b"ok", "FIN")
    s.close()
    lst.close()


def test_upstream_closing_early_and_client_reset(proxies):
    early = Upstream(lambda c: None)  # accepts, then closes at once
    p = proxies(early.addr)
    for _ in range(10):
        s = p.connect()
        s.sendall(b"x")
        try:
            assert recv_all(s) == b""
        except ConnectionResetError:
            pass  # our byte may reach a closed socket: a reset is the honest answer then
        s.close()
    errors = []

    def talker(c):
        try:
            while True:
                c.sendall(b"y" * 65536)
        except OSError as e:
            errors.append(e.errno)
    up = Upstream(talker)
    st, body = p.api("POST", "/proxies", {"name": "t", "upstream": up.addr, "listen": "127.0.0.1:0"})
    time.sleep(0.2)  # the API connection closes
    base = fd_kinds(p.pid)[0]
    s = socket.create_connection(("127.0.0.1", int(body["listen"].rsplit(":", 1)[1])), timeout=5)
    s.recv(1000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # an RST to the proxy
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    assert errors and errors[0] in (104, 32)  # the upstream was reset too (ECONNRESET/EPIPE)
    time.sleep(0.2)
    assert fd_kinds(p.pid)[0] == base
    early.close()
    up.close()


@measures
def test_many_connections_leave_no_descriptors_or_memory(proxies, echo_up):
    """1,500 connections, 50 at a time, leave no descriptor behind and no memory growing
    with their number. Each round waits until the proxy has closed the last round's
    pairs: otherwise up to 100 pairs can be open at once when it is slow to see the
    closes, and the tables sized for that high-water mark look like a leak (RSS stepped
    up by ~1 MiB at a random round). RSS is read after 20 rounds and again after 10
    more; a leak of 1 KiB a connection would add 500 KiB in those 10."""
    p = proxies(echo_up.addr, "--toxic", "latency,latency=1,stream=upstream")
    idle_socks = fd_kinds(p.pid)[0]

    def rounds(n):
        for _ in range(n):
            socks = [p.connect() for _ in range(50)]
            for s in socks:
                assert rtts(s, 1)
                s.close()
            deadline = time.monotonic() + 5
            while fd_kinds(p.pid)[0] != idle_socks:
                assert time.monotonic() < deadline, f"sockets still open: {fd_kinds(p.pid)}"
                time.sleep(0.005)
    rounds(3)
    time.sleep(0.3)
    base_socks, _, base_other = fd_kinds(p.pid)
    rounds(17)
    time.sleep(0.3)
    settled = rss_kib(p.pid)
    rounds(10)
    time.sleep(0.3)
    socks, pipes, other = fd_kinds(p.pid)
    assert (socks, other) == (base_socks, base_other)
    assert pipes <= 2 * PIPE_POOL
    assert rss_kib(p.pid) - settled < 256


def test_config_file_in_toxiproxy_format(proxies, echo_up, tmp_path):
    cfg = tmp_path / "toxiproxy.json"
    cfg.write_text(json.dumps([
        {"name": "web_dev_frontend_1", "listen": "[::]:0", "upstream": echo_up.addr, "enabled": True},
        {"name": "web_dev_mysql_1", "listen": "127.0.0.1:0", "upstream": echo_up.addr, "enabled": False},
        {"name": "off", "listen": "0.0.0.0:0", "upstream": echo_up.addr, "enabled": False},
    ]))
    p = proxies("--config", str(cfg), expect=3)
    # toxiproxy's [::] takes IPv4 too, and its clients dial 127.0.0.1 or localhost
    assert p.proxies["web_dev_frontend_1"].startswith("127.0.0.1:")
    assert "listen [::]:0: binding 127.0.0.1 instead (add --public" in p.stderr()
    st, body = p.api("GET", "/proxies")
    assert st == 200 and set(body) == {"web_dev_frontend_1", "web_dev_mysql_1", "off"}
    assert body["off"]["listen"] == "127.0.0.1:0"  # disabled: shown as enabling binds it
    assert body["web_dev_mysql_1"]["enabled"] is False
    port = int(body["web_dev_frontend_1"]["listen"].rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert rtts(s, 1)
    s.close()


def test_a_config_with_two_proxies_of_one_name_uses_the_later_and_says_so(proxies, echo_up, tmp_path):
    cfg = tmp_path / "dup.json"
    cfg.write_text(json.dumps([
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": echo_up.addr},
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo_up.addr},
    ]))
    p = proxies("--config", str(cfg), expect=2)
    assert "proxies 1 and 3 are both named 'a': the later one is used" in p.stderr()
    st, body = p.api("GET", "/proxies")
    assert st == 200 and set(body) == {"a", "b"} and body["a"]["upstream"] == echo_up.addr


def random_source(data):
    def h(c):
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
    return h


def slow_download(p, size):
    """Connects, waits 0.4 s before reading (the proxy's writes to it come back short),
    then reads all with a small receive buffer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(20)
    s.connect(("127.0.0.1", p.port()))
    time.sleep(0.4)
    got = recv_all(s, limit=size + 1)
    s.close()
    return got


@pytest.mark.parametrize("toxic", [[], ["--toxic", "latency,latency=1"],
                                   ["--toxic", "slicer,average_size=3000,size_variation=2000"],
                                   ["--toxic", "bandwidth,rate=1000000"]],
                         ids=["plain", "latency", "slicer", "bandwidth"])
def test_bytes_arrive_in_order_to_a_slow_reader(proxies, toxic):
    """Random bytes (a repeated pattern would hide a reordering) to a client that reads
    late and slowly: every write of the proxy's comes back short many times, and what
    arrives is what was sent. (Through a toxic, the rest of a short write was taken from
    the wrong place: 8 MB downloads came out reordered.)"""
    data = os.urandom(8 << 20)
    up = Upstream(random_source(data))
    p = proxies(up.addr, *toxic)
    for _ in range(3):
        got = slow_download(p, len(data))
        assert len(got) == len(data) and got == data, \
            next((i for i in range(min(len(got), len(data))) if got[i] != data[i]), len(got))
    up.close()


def test_loopback_pairs_keep_small_receive_buffers(proxies):
    """A pair's sockets to loopback peers keep a 512 KiB receive buffer (SO_RCVBUF 256
    KiB, doubled by the kernel) however fast the proxy drains them. Grown by the kernel
    (to 1.4 MB on average), the buffers of 250 pairs whose clients stopped reading held
    340 MB, took the machine past tcp_mem's pressure mark, and the kernel's drops then
    stalled pairs for seconds; haproxy, reading 16 KiB at a time, stayed below it."""
    data = os.urandom(32 << 20)

    def send_then_wait(c):
        c.sendall(data)
        c.recv(1)  # the pair stays open until the client says

    up = Upstream(send_then_wait)
    p = proxies(up.addr)
    s = p.connect()
    got = bytearray()
    while len(got) < len(data):
        got += s.recv(1 << 20)
    bufs = rcvbufs_of(p.pid)  # both sockets of the pair, one drained fast
    s.sendall(b"!")
    s.close()
    up.close()
    assert got == data
    assert bufs == [2 * 256 * 1024] * 2, bufs


def test_a_lone_upstream_listens_outside_the_ephemeral_range(proxies):
    """With no listen address, the proxy picks a port outside the kernel's ephemeral
    range (as isolate's -p 0 and `loopkit port` do)."""
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    up = Upstream(lambda c: c.close())
    p = proxies(up.addr, api=False)
    assert not lo <= p.port() <= hi, (p.port(), lo, hi)
    up.close()


NOPIPES_UID = 64917  # a uid no one else uses: its pipe budget is this test's alone


def test_small_pipes_past_the_users_soft_limit(proxies):
    """Past fs.pipe-user-pages-soft, a user's new pipes hold 8 KiB and cannot be grown.
    A proxy running as that user stashed the rest of a short 16 KiB send in such a pipe,
    failed, and reset the connection; the rest now waits in memory, and the bytes arrive
    whole and in order."""
    soft = int(open("/proc/sys/fs/pipe-user-pages-soft").read())
    hog = subprocess.Popen(
        ["setpriv", f"--reuid={NOPIPES_UID}", f"--regid={NOPIPES_UID}", "--clear-groups", "--",
         "/usr/bin/python3", "-c",
         "import fcntl, os, sys\n"
         "pipes = []\n"
         "while True:\n"
         "    r, w = os.pipe()\n"
         "    pipes.append((r, w))\n"
         "    try:\n"
         "        fcntl.fcntl(w, 1031, 1 << 20)\n"  # F_SETPIPE_SZ
         "    except OSError:\n"
         "        break\n"
         "print(len(pipes), flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    d = None
    try:
        held = int(hog.stdout.readline())
        assert held * 256 >= soft, (held, soft)  # the user is past its soft limit
        d = tempfile.mkdtemp(prefix="loopkit-proxy-")  # pytest's own directories are closed to others
        os.chmod(d, 0o755)
        lk = os.path.join(d, "loopkit")
        shutil.copy(PROXY_BIN, lk)
        os.chmod(lk, 0o755)
        data = os.urandom(8 << 20)
        up = Upstream(random_source(data))
        p = proxies(up.addr, prefix=["setpriv", f"--reuid={NOPIPES_UID}", f"--regid={NOPIPES_UID}",
                                     "--clear-groups", "--"], binary=lk)
        for _ in range(3):
            got = slow_download(p, len(data))
            assert len(got) == len(data) and got == data
        p.stop()
        assert "reset" not in p.stderr(), p.stderr()
        up.close()
    finally:
        hog.stdin.close()
        hog.wait(10)
        if d:
            shutil.rmtree(d, ignore_errors=True)


@measures
def test_a_slow_reader_is_not_buffered_without_bound(proxies):
    """With a toxic on the path the proxy holds at most PROXY_CHAIN_MAX (256 KiB) per
    direction: a client that does not read stops the upstream, it does not grow the proxy."""
    n = 50_000_000
    sent = []

    def src(c):
        pat = b"z" * 65536
        total = 0
        c.settimeout(3)
        try:
            while total < n:
                total += c.send(pat)
        except OSError:
            pass
        sent.append(total)
    up = Upstream(src)
    p = proxies(up.addr, "--toxic", "latency,latency=1")
    base = rss_kib(p.pid)
    s = p.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sent and sent[0] < 20_000_000, sent  # the upstream was held back (socket buffers only)
    assert rss_kib(p.pid) - base < 2048
    got = recv_all(s, limit=sent[0])
    assert len(got) == sent[0]
    s.close()
    up.close()


def test_timeout_added_live_closes_an_existing_connection(proxies, echo_up):
    p = proxies(echo_up.addr)
    s = p.connect()
    assert rtts(s, 1)
    t = time.monotonic()
    st, _ = p.api("POST", "/proxies/proxy/toxics", {"type": "timeout", "stream": "upstream",
                                                      "attributes": {"timeout": 300}})
    assert st == 200
    assert recv_all(s) == b""  # closed by the new toxic, with no more traffic
    assert 0.28 <= time.monotonic() - t <= 1.5
    s.close()


def test_listen_update_naming_the_same_address_changes_nothing(proxies, echo_up):
    p = proxies(echo_up.addr)
    port = p.port()
    s = p.connect()
    st, body = p.api("POST", "/proxies/proxy", {"listen": f"localhost:{port}"})
    assert st == 200 and body["listen"] == f"127.0.0.1:{port}"
    assert rtts(s, 1)
    s.close()


@measures
def test_an_upstream_that_never_answers_is_given_up(proxies):
    """A listener that never accepts, its queue full: SYNs go unanswered. After
    PROXY_CONNECT_MS (10 s) the proxy resets the client's connection, as for an upstream
    that refuses, and says why (it sent a FIN, which curl reads as "Empty reply from
    server")."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(0)
    p = proxies(f"127.0.0.1:{mute.getsockname()[1]}")
    fillers = [p.connect() for _ in range(3)]  # fill the accept queue
    time.sleep(0.5)
    s = p.connect(timeout=20)
    t = time.monotonic()
    got = read_until_end(s, 20)
    waited = time.monotonic() - t
    assert got == (b"", "RST") and 9.0 <= waited <= 12.5, (got, waited)
    assert "did not answer within 10000 ms; the client's connection is reset" in p.stderr()
    for f in fillers + [s]:
        f.close()
    mute.close()


def test_an_upstream_slow_to_accept_gets_what_the_client_sent_meanwhile(proxies):
    """On loopback the proxy's connect usually completes at once and the client's bytes
    go up with it. With the upstream's queue full, its SYN goes unanswered and the
    connection completes on a retransmitted SYN, a second later: what the client sent
    meanwhile goes up then, and the answer comes back."""
    slow = socket.socket()
    slow.bind(("127.0.0.1", 0))
    slow.listen(0)  # a queue of one
    slow.settimeout(10)
    p = proxies(f"127.0.0.1:{slow.getsockname()[1]}")
    filler = p.connect()
    time.sleep(0.3)  # its upstream connection fills the queue
    s = p.connect(timeout=10)
    s.sendall(b"sent while the upstream was busy")
    t = time.monotonic()
    time.sleep(0.2)
    first = slow.accept()[0]  # the filler's: the retransmitted SYN now finds room
    second = slow.accept()[0]
    waited = time.monotonic() - t
    second.settimeout(5)
    assert second.recv(100) == b"sent while the upstream was busy"
    assert 0.5 < waited < 8, waited  # it did wait for a retransmitted SYN
    second.sendall(b"answer")
    assert s.recv(100) == b"answer"
    for c in (filler, first, second, s):
        c.close()
    slow.close()


def test_several_proxies_from_flags(proxies, echo_up):
    a = Upstream(lambda c: c.sendall(b"A" + c.recv(10)))
    p = proxies(echo_up.addr, "--proxy", f"second={a.addr}", "--proxy", f"third=127.0.0.1:0,{a.addr}",
                "--toxic", "latency,latency=1", expect=3)
    assert set(p.proxies) == {"proxy", "second", "third"}
    for name in ("second", "third"):
        s = p.connect(name)
        s.sendall(b"x")
        assert s.recv(10) == b"Ax"
        s.close()
    st, body = p.api("GET", "/proxies")
    assert [t["name"] for t in body["proxy"]["toxics"]] == ["latency_downstream"]
    assert body["second"]["toxics"] == [] and body["third"]["toxics"] == []
    a.close()


def test_a_port_alone_is_on_loopback(proxies, echo_up):
    """`loopkit proxy 8080`: a bare port is 127.0.0.1:PORT, for UPSTREAM, LISTEN, --proxy
    and the API, and the output and the API show what it means."""
    p = proxies(str(echo_up.port), "--proxy", f"two=0,{echo_up.port}", expect=2)
    assert f"proxy  {p.proxies['proxy']} -> {echo_up.addr}\n" in p.lines, p.lines
    assert f"two  {p.proxies['two']} -> {echo_up.addr}\n" in p.lines, p.lines
    assert p.proxies["proxy"].startswith("127.0.0.1:") and p.proxies["two"].startswith("127.0.0.1:")
    for name in ("proxy", "two"):
        with p.connect(name) as s:
            assert rtts(s, 2)
    st, body = p.api("POST", "/proxies", {"name": "three", "upstream": str(echo_up.port), "listen": "0"})
    assert st == 201 and body["upstream"] == echo_up.addr and body["listen"].startswith("127.0.0.1:"), body
    with socket.create_connection(("127.0.0.1", int(body["listen"].rsplit(":", 1)[1])), timeout=5) as s:
        assert rtts(s, 1)
    st, body = p.api("GET", "/proxies")
    assert {n: b["upstream"] for n, b in body.items()} == dict.fromkeys(("proxy", "two", "three"), echo_up.addr)


def test_a_half_closed_pair_carries_a_late_answer_both_ways(proxies):
    """A client that half-closes (nc -N) and a server that answers 11 s later: the answer
    arrives, as on a direct connection; the same with the upstream half-closing first. The
    proxy closed such pairs after 10 s without traffic, with a FIN: the client read an
    empty answer. Held half-closed, the pairs cost no CPU. A client that closed its
    socket entirely can get nothing more: its pair ends after those 10 s, though the
    upstream never closes (a leaky server must not pin the proxy's descriptors)."""
    ups = socket.socket()
    ups.bind(("127.0.0.1", 0))
    ups.listen()
    p = proxies(f"127.0.0.1:{ups.getsockname()[1]}")
    client_first = p.connect()
    up_a, _ = ups.accept()
    upstream_first = p.connect()
    up_b, _ = ups.accept()
    left = p.connect()
    up_c, _ = ups.accept()
    left.close()  # closed, not half-closed
    with ups, client_first, upstream_first, up_a, up_b, up_c:
        assert read_until_end(up_c, 5) == (b"", "FIN")
        client_first.sendall(b"question")
        client_first.shutdown(socket.SHUT_WR)
        assert read_until_end(up_a, 5) == (b"question", "FIN")
        up_b.sendall(b"greeting")
        up_b.shutdown(socket.SHUT_WR)
        assert read_until_end(upstream_first, 5) == (b"greeting", "FIN")
        cpu = proc_cpu_seconds(p.pid)
        time.sleep(11)
        assert proc_cpu_seconds(p.pid) - cpu < 0.5  # a few wakeups at most, no spin
        # the pair of the client that left has ended; the two half-closed ones are open
        assert 'loopkit_proxy_connections_open{proxy="proxy"} 2\n' in p.api("GET", "/metrics")[1]
        up_a.sendall(b"late answer")
        up_a.close()
        assert read_until_end(client_first, 5) == (b"late answer", "FIN")
        upstream_first.sendall(b"late question")
        upstream_first.close()
        assert read_until_end(up_b, 5) == (b"late question", "FIN")
