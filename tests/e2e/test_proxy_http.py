"""loopkit proxy in front of an HTTP server (loopkit serve): HTTP toxics seen by curl and
Python's http.client, HAR checked by npm's har-validator, pcap read by tshark and tcpdump."""
import http.client
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import CURL, Server, segs_in
from proxyutil import NPM_DIR, PROXY_BIN, measures, proxies  # noqa: F401 (fixtures)

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")


@pytest.fixture
def web(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("hello\n")
    (root / "big.bin").write_bytes(bytes(range(256)) * 400)  # 102400 bytes
    (root / "bin.dat").write_bytes(bytes(range(256)))
    s = Server(str(root), ["--write", "-q"])
    yield s
    s.stop()




def up(web):
    return f"127.0.0.1:{web.port}"


def curl(url, *args):
    r = subprocess.run([CURL, "-s", "-S", *args, url], capture_output=True, timeout=30)
    return r


def get(p, path, headers=None, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_an_answer_and_its_end_pass_in_one_segment(proxies, web):
    """serve sends a closing answer with its FIN in one segment; the proxy passes the two
    on together, so the client receives what it would from serve directly: the SYN-ACK,
    the ACK of its request, and one segment with the answer and the end."""
    p = proxies(up(web))
    for _ in range(20):
        with p.connect() as s:
            s.sendall(b"GET /a.txt HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello\n"), data
            assert segs_in(s) == 3


def test_fail_first_n_requests_then_pass(proxies, web):
    p = proxies(up(web), "--toxic", "http_fail,first=2,status=503")
    codes = [curl(f"http://127.0.0.1:{p.port()}/a.txt", "-o", "/dev/null", "-w", "%{http_code}").stdout
             for _ in range(4)]
    assert codes == [b"503", b"503", b"200", b"200"]
    r, body = get(p, "/a.txt")
    assert r.status == 200 and body == b"hello\n"
    p.stop()
    assert "toxic http_fail_downstream (http_fail, downstream): applied 2 times" in p.rest


def test_fail_a_fraction_on_one_keepalive_connection_in_order(proxies, web):
    p = proxies(up(web), "--toxic", "http_fail,probability=0.5,status=429", "--seed", "11")
    c = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=10)
    statuses = []
    for i in range(40):
        c.request("PUT", f"/f{i}.txt", body=f"body {i}")  # with bodies: failed ones are skipped whole
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
    c.close()
    assert set(statuses) == {201, 429}
    assert 10 <= statuses.count(429) <= 30, statuses
    created = sorted(n for n in os.listdir(web.root) if n.startswith("f"))
    assert len(created) == statuses.count(201)  # the upstream saw exactly the passed ones
    for i, st in enumerate(statuses):
        assert os.path.exists(os.path.join(web.root, f"f{i}.txt")) == (st == 201)


def test_pipelined_requests_keep_their_order(proxies, web):
    import socket
    p = proxies(up(web), "--toxic", "http_fail,first=1,status=500")
    s = socket.create_connection(("127.0.0.1", p.port()), timeout=10)
    reqs = b"".join(f"GET /{p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                    for p in ("a.txt?failed", "missing.txt", "a.txt"))
    s.sendall(reqs + b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    statuses = re.findall(rb"HTTP/1.1 (\d+)", data)
    assert statuses == [b"500", b"404", b"200", b"200"]


@measures
def test_delay_per_request_not_per_connection(proxies, web):
    p = proxies(up(web), "--toxic", "http_delay,delay=150")
    c = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=10)
    xs = []
    for _ in range(5):
        t = time.monotonic()
        c.request("GET", "/a.txt")
        r = c.getresponse()
        assert r.read() == b"hello\n"
        xs.append(time.monotonic() - t)
    c.close()
    assert all(0.145 <= x <= 0.3 for x in xs), xs  # every request on the keep-alive connection


def test_header_add_drop_replace(proxies, web):
    p = proxies(up(web), "--toxic", "http_header,action=add,name=X-Chaos,value=yes,stream=downstream",
                "--toxic", "http_header:h2,action=replace,name=Host,value=127.0.0.1,stream=upstream")
    r = curl(f"http://127.0.0.1:{p.port()}/a.txt", "-i", "-H", "Host: evil.example")
    assert r.returncode == 0
    head, body = r.stdout.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nX-Chaos: yes" in head and body == b"hello\n"
    st, _ = p.api("POST", "/proxies/proxy/toxics", {"type": "http_header", "stream": "downstream",
                                                      "name": "drop", "attributes": {"action": "drop",
                                                                                     "name": "etag"}})
    assert st == 200
    r, body = get(p, "/a.txt", headers={"Host": "127.0.0.1"})
    assert r.getheader("ETag") is None and r.getheader("X-Chaos") == "yes"  # both, in chain order
    p.api("DELETE", "/proxies/proxy/toxics/drop")
    r, body = get(p, "/a.txt", headers={"Host": "127.0.0.1"})
    assert r.getheader("ETag") and r.getheader("X-Chaos") == "yes" and r.status == 200


def test_cut_response_mid_body(proxies, web):
    p = proxies(up(web), "--toxic", "http_cut,after=1000")
    r = curl(f"http://127.0.0.1:{p.port()}/big.bin", "-o", "-")
    assert r.returncode == 18  # curl: partial file
    assert r.stdout == (bytes(range(256)) * 400)[:1000]
    r, body = get(p, "/a.txt")  # shorter bodies pass whole
    assert body == b"hello\n"
    st, _ = p.api("POST", "/proxies/proxy/toxics/http_cut_downstream", {"attributes": {"after": 10, "reset": 1}})
    c = http.client.HTTPConnection("127.0.0.1", p.port(), timeout=10)
    c.request("GET", "/big.bin")
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        c.getresponse().read()


def test_not_http_is_relayed_untouched(proxies):
    import socket
    from proxyutil import Upstream, echo
    u = Upstream(echo)
    p = proxies(u.addr, "--toxic", "http_fail,first=100", "--record", "/dev/null")
    s = p.connect()
    s.sendall(b"\x16\x03\x01binary, not a request")
    assert s.recv(100) == b"\x16\x03\x01binary, not a request"
    s.close()
    greet = Upstream(lambda c: c.sendall(b"220 server speaks first\r\n") or c.recv(100))
    st, body = p.api("POST", "/proxies", {"name": "g", "upstream": greet.addr, "listen": "127.0.0.1:0"})
    st, _ = p.api("POST", "/proxies/g/toxics", {"type": "http_delay", "attributes": {"delay": 5000}})
    s = socket.create_connection(("127.0.0.1", int(body["listen"].rsplit(":", 1)[1])), timeout=5)
    assert s.recv(100) == b"220 server speaks first\r\n"
    s.close()
    u.close()
    greet.close()


def validate_har(path):
    env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
    r = subprocess.run(["node", os.path.join(NODE_DIR, "har_validate.js"), path], capture_output=True,
                       text=True, timeout=60, env=env)
    return r


def test_har_is_valid_and_complete(proxies, web, tmp_path):
    har = str(tmp_path / "t.har")
    p = proxies(up(web), "--record", har, "--toxic", "http_fail,first=1,status=502")
    assert curl(f"http://127.0.0.1:{p.port()}/a.txt?x=1&y").stdout.startswith(b"502 Bad Gateway")
    assert curl(f"http://127.0.0.1:{p.port()}/a.txt?x=1&y").stdout == b"hello\n"
    assert curl(f"http://127.0.0.1:{p.port()}/big.bin").stdout == bytes(range(256)) * 400
    assert curl(f"http://127.0.0.1:{p.port()}/bin.dat").stdout == bytes(range(256))
    body = tmp_path / "body.txt"
    body.write_bytes(b"x" * 70000)
    assert curl(f"http://127.0.0.1:{p.port()}/up.txt", "-X", "PUT", "--data-binary", f"@{body}",
                "-H", "Content-Type: text/plain").returncode == 0
    r = validate_har(har)  # valid while the proxy still runs: the file is whole after every entry
    assert r.returncode == 0, r.stdout + r.stderr
    p.stop()
    r = validate_har(har)
    assert r.returncode == 0 and json.loads(r.stdout) == {"valid": True, "entries": 5}, r.stdout
    log = json.load(open(har))["log"]
    e = log["entries"]
    assert e[0]["response"]["status"] == 502 and e[0]["comment"] == "injected by http_fail"
    assert e[1]["request"]["queryString"] == [{"name": "x", "value": "1"}, {"name": "y", "value": ""}]
    assert e[1]["request"]["url"] == f"http://127.0.0.1:{p.port()}/a.txt?x=1&y"
    assert e[1]["response"]["content"]["text"] == "hello\n"
    big = e[2]["response"]["content"]
    assert big["size"] == 102400 and big["_truncated"] is True and "truncated" in big["comment"]
    import base64
    assert base64.b64decode(big["text"]) == (bytes(range(256)) * 400)[:65536]
    assert base64.b64decode(e[3]["response"]["content"]["text"]) == bytes(range(256))
    assert e[3]["response"]["content"]["encoding"] == "base64"
    post = e[4]["request"]
    assert post["method"] == "PUT" and post["bodySize"] == 70000
    assert post["postData"]["mimeType"] == "text/plain" and len(post["postData"]["text"]) == 65536
    assert e[4]["response"]["status"] == 201


def test_har_content_is_the_payload_unchunked_and_decoded(proxies, web, tmp_path):
    # HAR 1.2: content.size is the decoded size, text the decoded body, compression the
    # bytes it saved (as browsers' devtools record it)
    har = str(tmp_path / "c.har")
    p = proxies(up(web), "--record", har)
    base = f"http://127.0.0.1:{p.port()}"
    streamed = curl(f"{base}/_/stream/3").stdout
    assert streamed.count(b"\n") == 3
    for coding in ("gzip", "deflate", "brotli"):
        assert curl(f"{base}/_/{coding}", "--compressed").returncode == 0
    time.sleep(0.2)
    p.stop()
    r = validate_har(har)
    assert r.returncode == 0 and json.loads(r.stdout) == {"valid": True, "entries": 4}, r.stdout
    e = json.load(open(har))["log"]["entries"]
    c = e[0]["response"]["content"]
    assert c["text"].encode() == streamed and c["size"] == len(streamed), c
    assert e[0]["response"]["bodySize"] > len(streamed)  # the chunked bytes on the wire
    for entry, coding, key in zip(e[1:], ("gzip", "deflate", "br"), ("gzipped", "deflated", "brotli")):
        resp = entry["response"]
        assert {"name": "Content-Encoding", "value": coding} in resp["headers"]
        c = resp["content"]
        doc = json.loads(c["text"])  # decoded text, not base64 of the compressed bytes
        assert doc[key] is True and "encoding" not in c, c
        assert c["size"] == len(c["text"].encode()) and c["compression"] == c["size"] - resp["bodySize"], c
        assert c["compression"] > 0 and "comment" not in c


def test_har_decoding_stops_at_the_body_limit_and_names_a_bad_body(proxies, tmp_path):
    import gzip as gz
    root = tmp_path / "bomb"
    root.mkdir()
    (root / "zeros.txt").write_bytes(b"0" * 4_000_000)
    (root / "zeros.txt.gz").write_bytes(gz.compress(b"0" * 4_000_000))  # 4 MB from 4 KB
    (root / "bad.txt").write_text("not really\n")
    (root / "bad.txt.gz").write_bytes(b"\x1f\x8b\x08\x00not gzip at all")
    srv = Server(str(root), ["--precompressed", "-q"])
    try:
        har = str(tmp_path / "b.har")
        p = proxies(f"127.0.0.1:{srv.port}", "--record", har)
        for name in ("zeros.txt", "bad.txt"):
            assert curl(f"http://127.0.0.1:{p.port()}/{name}", "-H", "Accept-Encoding: gzip").returncode == 0
        time.sleep(0.2)
        p.stop()
    finally:
        srv.stop()
    e = json.load(open(har))["log"]["entries"]
    c = e[0]["response"]["content"]
    assert c["text"] == "0" * 65536 and c["size"] == 65536 and c["_truncated"] is True, \
        {k: v for k, v in c.items() if k != "text"}
    assert c["comment"] == "decoded: the first 65536 bytes (loopkit keeps at most that many per body)"
    c = e[1]["response"]["content"]
    assert c["comment"] == "the body could not be decoded; the bytes are as sent" and c["encoding"] == "base64"
    assert c["_truncated"] is False


def tshark_follow(pcap, stream):
    r = subprocess.run(["tshark", "-r", pcap, "-q", "-z", f"follow,tcp,raw,{stream}"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("===================================================================")[1].splitlines()
    up, down = b"", b""
    for line in lines:
        if re.fullmatch(r"\t[0-9a-f]+", line):
            down += bytes.fromhex(line.strip())
        elif re.fullmatch(r"[0-9a-f]+", line):
            up += bytes.fromhex(line)
    return up, down


def test_pcap_reads_back_as_tcp_streams(proxies, web, tmp_path):
    pcap = str(tmp_path / "t.pcap")
    p = proxies(up(web), "--pcap", pcap, "--toxic", "latency,latency=5")
    outs = [curl(f"http://127.0.0.1:{p.port()}/big.bin").stdout, curl(f"http://127.0.0.1:{p.port()}/a.txt").stdout]
    assert outs == [bytes(range(256)) * 400, b"hello\n"]
    time.sleep(0.2)
    p.stop()
    up0, down0 = tshark_follow(pcap, 0)
    assert up0.startswith(b"GET /big.bin HTTP/1.1\r\n")
    assert down0.startswith(b"HTTP/1.1 200 OK\r\n") and down0.endswith(bytes(range(256)) * 400)
    up1, down1 = tshark_follow(pcap, 1)
    assert up1.startswith(b"GET /a.txt") and down1.endswith(b"\r\n\r\nhello\n")
    r = subprocess.run(["tcpdump", "-r", pcap, "-nn"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "reading from file" in r.stderr
    assert re.search(rf"IP 127.0.0.1.{p.port()} > 127.0.0.1.\d+: Flags \[S.\]", r.stdout), r.stdout
    assert "Flags [F.]" in r.stdout
    r = subprocess.run(["tshark", "-r", pcap, "-q", "-z", "expert"], capture_output=True, text=True, timeout=60)
    assert "Malformed" not in r.stdout and "retransmission" not in r.stdout.lower()


def test_pcap_shows_a_reset_as_a_reset(proxies, web, tmp_path):
    # a cut with reset=1, and an upstream that refuses: the client saw ECONNRESET, so the
    # log must show an RST, not a FIN that makes a cut transfer look complete
    pcap = str(tmp_path / "r.pcap")
    p = proxies(up(web), "--pcap", pcap, "--toxic", "http_cut,after=1000,reset=1")
    r = curl(f"http://127.0.0.1:{p.port()}/big.bin")
    assert r.returncode == 56 and 1000 <= len(r.stdout) < 102400, (r.returncode, len(r.stdout))
    time.sleep(0.2)
    p.stop()
    dump = subprocess.run(["tcpdump", "-r", pcap, "-nn"], capture_output=True, text=True, timeout=60).stdout
    assert re.search(rf"IP 127.0.0.1.{p.port()} > 127.0.0.1.\d+: Flags \[R.\]", dump), dump
    assert "Flags [F.]" not in dump, dump

    pcap2 = str(tmp_path / "refused.pcap")
    with socket.socket() as hole:  # a port that refuses
        hole.bind(("127.0.0.1", 0))
        dead = hole.getsockname()[1]
    p = proxies(f"127.0.0.1:{dead}", "--pcap", pcap2)
    with pytest.raises(ConnectionResetError):
        with p.connect() as s:
            s.sendall(b"hi")
            s.recv(10)
    time.sleep(0.2)
    p.stop()
    dump = subprocess.run(["tcpdump", "-r", pcap2, "-nn"], capture_output=True, text=True, timeout=60).stdout
    flags = re.findall(r"Flags \[([^\]]+)\]", dump)
    assert flags == ["S", "S.", ".", "R."], dump


def test_hexdump_prints_both_directions(proxies, web):
    p = proxies(up(web), "--hexdump")
    assert curl(f"http://127.0.0.1:{p.port()}/a.txt").stdout == b"hello\n"
    time.sleep(0.2)
    p.stop()
    out = p.rest
    assert re.search(r"\[1\] client > upstream \d+ bytes\n  00000000  47 45 54 20 2f 61 2e 74", out), out
    # The answer, read back from its hex columns, is the whole HTTP response.
    down = out.split("upstream > client", 1)[1].split("[1] closed", 1)[0]
    data = bytes.fromhex("".join(m.group(1).replace(" ", "")
                                 for m in re.finditer(r"^  [0-9a-f]{8}  ([0-9a-f ]{48,49})", down, re.M)))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nhello\n"), out
    assert re.search(r"\[1\] closed: \d+ bytes up, \d+ down", out)


def test_json_and_hexdump_both_want_stdout(web):
    r = subprocess.run([PROXY_BIN, "proxy", "--json", "--hexdump", "--api", "off", up(web)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "loopkit proxy: --hexdump prints on stdout, where --json's lines go: give one of them\n"


def test_json_summary(proxies, web):
    p = proxies(up(web), "--json", "--toxic", "latency,latency=1")
    for _ in range(3):
        assert curl(f"http://127.0.0.1:{p.port()}/a.txt").stdout == b"hello\n"
    time.sleep(0.2)
    assert p.start == {"proxies": [{"name": "proxy", "listen": p.proxies["proxy"], "upstream": up(web),
                                    "enabled": True}], "api": f"http://{p.api_addr}/"}
    p.stop()
    doc = json.loads(p.rest)  # the second line, the last: stdout is JSON lines
    assert p.rest.count("\n") == 1 and p.rest.endswith("\n")
    (px,) = doc["proxies"]
    assert px["name"] == "proxy" and px["connections"] == 3 and px["refused"] == 0
    assert px["bytes_down"] > 3 * 6 and px["bytes_up"] > 3 * 20
    assert px["toxics"] == [{"name": "latency_downstream", "type": "latency", "stream": "downstream",
                             "applied": 3, "removed": False}]


@measures
def test_http_toxics_with_a_concurrent_load(proxies, web):
    """wrk through an http_fail toxic: the proxy answers every request, in order, at speed."""
    p = proxies(up(web), "--toxic", "http_fail,probability=0.1,status=503")
    r = subprocess.run(["wrk", "-t1", "-c8", "-d2s", f"http://127.0.0.1:{p.port()}/a.txt"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0
    m = re.search(r"(\d+) requests in", r.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    assert m and non2xx, r.stdout
    total, bad = int(m.group(1)), int(non2xx.group(1))
    assert total > 1000 and 0.07 <= bad / total <= 0.13, r.stdout
    assert "Socket errors" not in r.stdout, r.stdout


def test_more_pipelined_requests_than_the_framer_tracks(proxies, web):
    """Past 64 outstanding requests (PHTTP_QUEUE) the framer lets the stream through
    untouched: every response still arrives, in order."""
    import socket
    p = proxies(up(web), "--toxic", "http_delay,delay=1")
    s = socket.create_connection(("127.0.0.1", p.port()), timeout=10)
    reqs = b"".join(f"GET /a.txt?{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(99))
    s.sendall(reqs + b"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    assert re.findall(rb"HTTP/1.1 (\d+)", data) == [b"200"] * 100
    assert data.count(b"\r\n\r\nhello\n") == 100


def test_har_entry_for_a_body_framed_by_close(proxies, tmp_path):
    from proxyutil import Upstream, recv_all

    def old_server(c):
        c.recv(65536)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    u = Upstream(old_server)
    har = str(tmp_path / "eof.har")
    p = proxies(u.addr, "--record", har)
    s = p.connect()
    s.sendall(b"GET /old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert recv_all(s).endswith(b"\r\n\r\nuntil the end")
    s.close()
    time.sleep(0.2)
    p.stop()
    (e,) = json.load(open(har))["log"]["entries"]
    assert e["request"]["httpVersion"] == "HTTP/1.0" and e["response"]["status"] == 200
    assert e["response"]["content"] == {"size": 13, "mimeType": "text/plain", "text": "until the end"}
    assert validate_har(har).returncode == 0
    u.close()


def test_har_keeps_exchanges_the_connection_ended(proxies, web, tmp_path):
    """A response cut on the wire (by an upstream that closes early, or by http_cut) and a
    request never answered are entries too, marked, with what came: the failures are
    what a recording is for."""
    from proxyutil import Upstream, recv_all

    def short_server(c):  # promises 1000 bytes, sends 500, closes
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500)

    def mute_server(c):  # reads the request, closes without a word
        c.recv(65536)

    def ws_server(c):  # switches protocols, echoes a frame, closes
        c.recv(65536)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        c.sendall(c.recv(100))

    short, mute, ws = Upstream(short_server), Upstream(mute_server), Upstream(ws_server)
    har = str(tmp_path / "cut.har")
    p = proxies(short.addr, "--record", har, "--proxy", f"mute=127.0.0.1:0,{mute.addr}",
                "--proxy", f"cutter=127.0.0.1:0,{up(web)}", "--proxy", f"ws=127.0.0.1:0,{ws.addr}", expect=4)
    with p.connect("ws") as s:  # an upgrade is not an unanswered request
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 101 ")
        s.sendall(b"frame")
        assert s.recv(100) == b"frame"
    st, _ = p.api("POST", "/proxies/cutter/toxics", {"type": "http_cut", "attributes": {"after": 1000}})
    assert st == 200
    for name, path in (("proxy", "/short"), ("mute", "/mute"), ("cutter", "/big.bin")):
        with p.connect(name) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            recv_all(s)
    time.sleep(0.3)
    p.stop()
    entries = {e["request"]["url"].rsplit("/", 1)[1]: e for e in json.load(open(har))["log"]["entries"]}
    assert set(entries) == {"short", "mute", "big.bin"}, list(entries)
    e = entries["short"]
    assert e["response"]["status"] == 200 and e["response"]["bodySize"] == 500
    assert e["response"]["content"]["text"] == "x" * 500
    assert e["comment"] == "cut: the connection ended after 500 bytes of the response body"
    e = entries["big.bin"]
    assert e["response"]["status"] == 200 and e["response"]["bodySize"] == 1000
    assert e["comment"] == "cut: the connection ended after 1000 bytes of the response body (the http_cut toxic)"
    e = entries["mute"]
    assert e["response"]["status"] == 0 and e["response"]["bodySize"] == -1
    assert e["comment"] == "no response: the connection ended before one came"
    r = validate_har(har)
    assert r.returncode == 0, r.stdout + r.stderr
    short.close()
    mute.close()
    ws.close()


def test_a_response_behind_a_slowly_read_one_is_framed_and_sent(proxies):
    """Two pipelined requests; the first answer is 3 MB that a slow client reads while
    the second answer arrives. The HTTP framer counted from where the queue's front
    would be once the piece in flight was sent, not from where it was: the second head
    was looked for in the wrong bytes and the answer never left (or a wrong one was
    rewritten)."""
    import random
    from proxyutil import Upstream
    body1 = random.randbytes(3_000_000)
    second = (b"HTTP/1.1 200 OK\r\nX-Second: " + b"v" * 200 + b"\r\nContent-Length: 5\r\n\r\nhello")

    def server(c):
        buf = b""
        while buf.count(b"\r\n\r\n") < 2:
            buf += c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body1) + body1)
        time.sleep(0.5)
        c.sendall(second)
        time.sleep(5)
    u = Upstream(server)
    for extra in (["--toxic", "http_header,action=add,name=X-A,value=hello"], ["--http"]):
        p = proxies(u.addr, *extra)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", p.port()))
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        data = b""
        while not data.endswith(b"\r\n\r\nhello"):
            chunk = s.recv(4096)
            assert chunk, data[-200:]
            data += chunk
            time.sleep(0.0005 if len(data) < 2_000_000 else 0)
        s.close()
        head1, rest = data.split(b"\r\n\r\n", 1)
        assert rest[:len(body1)] == body1
        head2 = rest[len(body1):]
        assert head2.startswith(b"HTTP/1.1 200 OK\r\nX-Second: ") and head2.endswith(b"\r\n\r\nhello"), head2
        if "--toxic" in extra:
            assert head1.endswith(b"\r\nX-A: hello") and b"\r\nX-A: hello\r\n\r\nhello" in head2
        p.stop()
    u.close()


def test_a_failed_upgrade_is_answered(proxies):
    """http_fail on a WebSocket upgrade or a CONNECT: the upstream never sees it, and the
    client gets the failure (it used to wait for an answer that never came)."""
    from proxyutil import Upstream
    seen = []

    def server(c):
        seen.append(c.recv(4096))
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    u = Upstream(server)
    for req in (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n"):
        p = proxies(u.addr, "--toxic", "http_fail,first=1,status=503")
        with p.connect() as s:
            s.settimeout(5)
            s.sendall(req)
            got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got
        p.stop()
        assert "applied 1 time\n" in p.rest
    time.sleep(0.2)
    assert set(seen) <= {b""}, seen  # connected to (the proxy connects at accept), never asked
    u.close()


def test_hexdump_never_blocks_on_a_reader_that_stopped(proxies):
    """Nobody reads the proxy's stdout (a full pipe): the relay goes on, lines are dropped."""
    from proxyutil import Upstream, echo
    u = Upstream(echo)
    p = proxies(u.addr, "--hexdump")
    s = p.connect()
    chunk = b"q" * 4096
    t = time.monotonic()
    for _ in range(300):  # 1.2 MB echoed: ~5 MB of hexdump, far over a pipe's 64 KiB
        s.sendall(chunk)
        got = 0
        while got < len(chunk):
            got += len(s.recv(65536))
    assert time.monotonic() - t < 20
    s.close()
    u.close()
