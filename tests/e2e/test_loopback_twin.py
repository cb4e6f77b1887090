"""Every listener of loopkit on 127.0.0.1 (or ::1) also holds the same port on the other
loopback address (core/net.h, net_listen_loopback): browsers try ::1 first for
localhost:PORT, so another user listening on [::1]:PORT would get the owner's pages,
uploads and credentials. The twin is bound, not listening: a client that tries it is
refused and goes on to the next address, as for any address nobody serves."""

import errno
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import LOOPKIT


def twin_bind_errno(family, port, as_nobody=False):
    """errno of binding (SO_REUSEADDR, as a squatter would) the loopback of family at port:
    0 when it binds."""
    addr = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    code = ("import socket,sys\n"
            f"s=socket.socket({int(family)})\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "try:\n"
            f"    s.bind(({addr!r}, {port})); s.listen(); print(0)\n"
            "except OSError as e:\n"
            "    print(e.errno)\n")
    argv = ["/usr/bin/python3", "-c", code]
    if as_nobody:
        argv = ["runuser", "-u", "nobody", "--"] + argv
    return int(subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout)


def start(argv, first_line_port):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    assert line, p.stderr.read().decode()
    return p, first_line_port(line)


def url_port(line):
    return int(line.rsplit(":", 1)[1].strip("/\n"))


def stop(p):
    p.terminate()
    p.wait(10)


@pytest.mark.skipif(os.geteuid() != 0, reason="runuser needs root")
def test_serve_holds_ipv6_loopback_against_another_user(tmp_path):
    p, port = start([LOOPKIT, "serve", str(tmp_path), "--port", "0", "-q"], url_port)
    try:
        assert twin_bind_errno(socket.AF_INET6, port, as_nobody=True) == errno.EADDRINUSE
        assert twin_bind_errno(socket.AF_INET6, port) == errno.EADDRINUSE
        # a second loopkit on ::1, as another user: exit 1, as on 127.0.0.1
        r = subprocess.run(["runuser", "-u", "nobody", "--", LOOPKIT, "serve", "/tmp", "--host", "::1",
                            "--port", str(port)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert f"port {port} on ::1 is already in use" in r.stderr, r.stderr
        # a client that tries ::1 is refused at once (and goes on to 127.0.0.1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("::1", port), timeout=5)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.close()
    finally:
        stop(p)
    # and the port is let go with the server
    assert twin_bind_errno(socket.AF_INET6, port) == 0


def test_serve_on_ipv6_holds_127_0_0_1(tmp_path):
    p, port = start([LOOPKIT, "serve", str(tmp_path), "--host", "::1", "--port", "0", "-q"], url_port)
    try:
        assert twin_bind_errno(socket.AF_INET, port) == errno.EADDRINUSE
    finally:
        stop(p)


def test_a_held_twin_is_refused_naming_its_holder(tmp_path):
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        r = subprocess.run([LOOPKIT, "serve", str(tmp_path), "--port", str(port)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert f"port {port} on ::1 is held by python3 (pid {os.getpid()}); try --port 0" in r.stderr, r.stderr
    finally:
        s.close()


def test_port_0_avoids_ports_whose_twin_is_taken(tmp_path):
    # hold [::1] on many ports: --port 0 lands on one whose twin is free (and holds it)
    held = []
    try:
        for _ in range(200):
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            held.append(s)
        taken = {s.getsockname()[1] for s in held}
        for _ in range(5):
            p, port = start([LOOPKIT, "serve", str(tmp_path), "--port", "0", "-q"], url_port)
            try:
                assert port not in taken
                assert twin_bind_errno(socket.AF_INET6, port) == errno.EADDRINUSE
            finally:
                stop(p)
    finally:
        for s in held:
            s.close()


def test_proxy_isolate_and_watch_listeners_hold_their_twin(tmp_path):
    procs = []
    try:
        p, port = start([LOOPKIT, "proxy", "127.0.0.1:0", "127.0.0.1:1", "--api", "127.0.0.1:0"],
                        lambda line: int(line.split()[1].rsplit(":", 1)[1]))
        procs.append(p)
        api = int(p.stdout.readline().decode().rsplit(":", 1)[1].strip("/\n"))
        for q in (port, api):
            assert twin_bind_errno(socket.AF_INET6, q) == errno.EADDRINUSE, q
        p, port = start([LOOPKIT, "isolate", "-p", "0:80", "--json", "--", "sleep", "30"],
                        lambda line: int(json.loads(line)["forwards"][0]["host"].rsplit(":", 1)[1]))
        procs.append(p)
        assert twin_bind_errno(socket.AF_INET6, port) == errno.EADDRINUSE
        p, port = start([LOOPKIT, "watch", "-p", "0", "tcp://127.0.0.1:1"], url_port)
        procs.append(p)
        assert twin_bind_errno(socket.AF_INET6, port) == errno.EADDRINUSE
    finally:
        for p in procs:
            stop(p)
