#!/usr/bin/python3
"""Helper for bench/http.sh: measuring a load run, the idle-connection memory
test, and the final table.  Standard library only; run with /usr/bin/python3.

Subcommands
  port                      print a free TCP port on 127.0.0.1
  rss PID                   print VmRSS of PID's process tree in KiB
  load  --results F --server S --case C --pid PID --kind wrk|ab|curl [--timeout T] -- CMD...
                            run CMD (the load generator, already wrapped in taskset),
                            measure server CPU (over PID's process tree, as
                            benchlib.py says) and the generator's own CPU (rusage),
                            parse the generator's output, append results to F
  idle  --results F --server S --pid PID --port P [--conns N] [--path /1k] [--client-cpu 0]
                            open N keep-alive connections, each sends one request and
                            reads the full response, then measure RSS and check that a
                            separate curl request is still served
  report --results F [--json OUT]
                            print the table and ratios

Results file, /proc readers, the measured run and the report's pieces: bench/benchlib.py,
shared with bench/ftp_bench.py. Nothing here passes or fails on timing: exit status is
non-zero only for usage errors or when the helper itself cannot run.
"""

import errno
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (RATIO_HEADING, add_client_args, add_load_args, add_report_args,  # noqa: E402
                      cli, disturbed_note, emit_all, free_port, load_note, measured_run, median_run, pin_to_cpu,
                      print_table,
                      ratio_cell, read_results, report_failure, server_gone, tree_rss_kib,
                      vm_kib, write_json)


# ---------------------------------------------------------------- output parsers

_UNITS = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        r["requests"] = int(m.group(1))
        dur = float(m.group(2))
        unit = m.group(3)
        r["duration_s"] = dur * {"s": 1, "ms": 1e-3, "us": 1e-6, "m": 60}.get(unit, 1)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    if m:
        r["lat_avg_ms"] = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    return r


def parse_ab(out):
    r = {}
    m = re.search(r"Complete requests:\s+(\d+)", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests per second:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Time taken for tests:\s+([\d.]+)", out)
    if m:
        r["duration_s"] = float(m.group(1))
    m = re.search(r"Failed requests:\s+(\d+)", out)
    r["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx responses:\s+(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def parse_curl(out):
    # -w '%{http_code} %{size_download} %{time_total}'
    r = {}
    m = re.search(r"(\d{3}) (\d+) ([\d.]+)\s*$", out.strip())
    if m:
        r["status"] = int(m.group(1))
        r["bytes"] = int(m.group(2))
        r["duration_s"] = float(m.group(3))
        if r["duration_s"] > 0:
            r["gbps"] = r["bytes"] / r["duration_s"] / 1e9
    return r


# ---------------------------------------------------------------- subcommands

def cmd_port(a):
    print(free_port())


def cmd_rss(a):
    print(tree_rss_kib(a.pid))


def cmd_load(a):
    if server_gone(a):
        return 1
    out, r, rc = measured_run(a)
    parse = {"wrk": parse_wrk, "ab": parse_ab, "curl": parse_curl}[a.kind]
    r.update(parse(out))
    ok = ("rps" in r) if a.kind in ("wrk", "ab") else (r.get("status") == 200)
    if not ok:
        report_failure(a, r, rc, out)
    if a.kind in ("wrk", "ab") and r.get("requests") and r["server_cpu_s"] > 0:
        r["req_per_cpu_s"] = r["requests"] / r["server_cpu_s"]
        r["cpu_us_per_req"] = r["server_cpu_s"] * 1e6 / r["requests"]
    emit_all(a.results, a.server, a.case, r)
    if a.kind == "curl":
        msg = (f"{r.get('gbps', 0):.2f} GB/s, {r.get('bytes', 0)} bytes, "
               f"server CPU {r['server_cpu_s']:.2f}s")
    else:
        msg = (f"{r.get('rps', 0):,.0f} req/s, {r.get('requests', 0)} req, "
               f"server CPU {r['server_cpu_s']:.2f}s, "
               f"{a.kind} CPU {r['client_cpu_pct']:.0f}%, "
               f"errors {r.get('errors', 0)}, non-2xx {r.get('non2xx', 0)}")
    print(f"  {a.server:<10} {a.case:<10} {msg}{load_note(r)}", flush=True)
    return 0


def _raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn:
    __slots__ = ("sock", "state", "out", "buf", "need")

    def __init__(self, sock, req):
        self.sock = sock
        self.state = "connect"
        self.out = req
        self.buf = b""
        self.need = None


def _response_done(c):
    """True when c.buf holds one complete response (Content-Length framed)."""
    if c.need is None:
        i = c.buf.find(b"\r\n\r\n")
        if i < 0:
            return False
        head = c.buf[:i].decode("latin-1").lower()
        m = re.search(r"\r\ncontent-length:\s*(\d+)", head)
        c.need = i + 4 + (int(m.group(1)) if m else 0)
    return len(c.buf) >= c.need


def cmd_idle(a):
    n = a.conns
    limit = _raise_nofile(n + 256)
    if limit < n + 64:
        print(f"  idle: RLIMIT_NOFILE is {limit}, lowering to {limit - 64} connections",
              file=sys.stderr)
        n = max(0, limit - 64)
    pin_to_cpu(a.client_cpu)
    req = (f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    conns, done, failed = [], 0, 0
    deadline = time.monotonic() + a.deadline
    t0 = time.monotonic()
    started = 0
    active = 0
    while (started < n or active) and time.monotonic() < deadline:
        # keep at most `batch` connections in progress so the listen backlog never overflows
        while started < n and active < a.batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", a.port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                failed += 1
                started += 1
                continue
            c = Conn(s, req)
            conns.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
            started += 1
            active += 1
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            s = c.sock
            try:
                if c.state == "connect":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    c.state = "send"
                if c.state == "send":
                    k = s.send(c.out)
                    c.out = c.out[k:]
                    if not c.out:
                        c.state = "recv"
                        sel.modify(s, selectors.EVENT_READ, c)
                    continue
                if c.state == "recv":
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed by server")
                    c.buf += data
                    if _response_done(c):
                        ok = c.buf.startswith(b"HTTP/1.1 200")
                        c.state = "idle" if ok else "bad"
                        c.buf = b""
                        sel.unregister(s)
                        active -= 1
                        if ok:
                            done += 1
                        else:
                            failed += 1
            except (OSError, BlockingIOError) as e:
                if isinstance(e, BlockingIOError):
                    continue
                c.state = "failed"
                sel.unregister(s)
                active -= 1
                failed += 1
    setup_s = time.monotonic() - t0
    time.sleep(a.settle)
    # every connection that answered is now idle on both sides
    rss = vm_kib(a.pid)
    hwm = vm_kib(a.pid, "VmHWM")
    # a separate client must still be served while the idle ones are held
    t1 = time.monotonic()
    cmd = ["curl", "-s", "-o", "/dev/null", "--max-time", "5",
           "-w", "%{http_code} %{size_download} %{time_total}",
           f"http://127.0.0.1:{a.port}{a.path}"]
    try:
        cp = subprocess.run(cmd, capture_output=True, timeout=10)
        cr = parse_curl(cp.stdout.decode())
    except subprocess.TimeoutExpired:
        cr = {}
    curl_ms = (time.monotonic() - t1) * 1e3
    # how many idle connections are still open (no EOF pending)
    still = 0
    for c in conns:
        if c.state != "idle":
            continue
        try:
            d = c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if d:
                still += 1      # unexpected data, but the connection is open
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    for c in conns:
        c.sock.close()
    r = {
        "conns_wanted": a.conns, "conns_ok": done, "conns_failed": failed,
        "conns_open_after": still, "setup_s": round(setup_s, 3),
        "rss_kib": rss if rss is not None else -1,
        "hwm_kib": hwm if hwm is not None else -1,
        "curl_status": cr.get("status", 0), "curl_ms": round(curl_ms, 1),
    }
    emit_all(a.results, a.server, "idle", r)
    print(f"  {a.server:<10} idle       {done}/{a.conns} connections answered and held "
          f"({failed} failed, {still} still open at the end) in {setup_s:.1f}s; "
          f"RSS {rss / 1024 if rss else 0:.1f} MiB; other client: HTTP "
          f"{cr.get('status', 'none')} in {curl_ms:.0f} ms", flush=True)
    return 0


# ---------------------------------------------------------------- report

SERVER_LABEL = {
    "loopkit": "loopkit",
    "base": "base",
    "lighttpd": "lighttpd",
    "nginx-ofc": "nginx+ofc",
    "nginx": "nginx",
    "python": "python",
}


def cmd_report(a):
    res = read_results(a.results)
    # several runs of a case ("ka-1k@1", "ka-1k@2", "dl@1".."dl@3", ...): the
    # median run (by req/s or GB/s) stands for the case, whole (its CPU too)
    for srv, cases in res.items():
        groups = {}
        for c, v in cases.items():
            if "@" in c:
                groups.setdefault(c.split("@", 1)[0], []).append(v)
        for base, runs in groups.items():
            key = "gbps" if base == "dl" else "rps"
            good = [v for v in runs if isinstance(v.get(key), float)]
            if not good:
                continue
            best = dict(median_run(good, key))
            best["runs"] = len(runs)
            best["min_" + key] = min(v[key] for v in good)
            best["max_" + key] = max(v[key] for v in good)
            if base == "dl":
                best["best_gbps"] = best["gbps"]
                best["best_server_cpu_s"] = best["server_cpu_s"]
            # errors over all runs
            best["errors"] = sum(v.get("errors", 0) for v in runs)
            best["non2xx"] = sum(v.get("non2xx", 0) for v in runs)
            best["failed"] = sum(v.get("failed", 0) for v in runs) or None
            cases[base] = best
    # the worst other load seen in the runs that stand for the cases
    for srv, cases in res.items():
        o = [cases[c].get("other_cpu_pct") for c in ("ka-100b", "ka-1k", "ab-1k", "dl")
             if c in cases and cases[c].get("other_cpu_pct") is not None]
        if o:
            cases["all"] = {"max_other_pct": max(o)}
    order = [s for s in ["loopkit", "lighttpd", "nginx-ofc", "nginx", "python"] if s in res]
    order += sorted(s for s in res if s not in order)

    def get(s, c, m):
        return res.get(s, {}).get(c, {}).get(m)

    rows = [
        # (title, case, metric, format, higher_is_better)
        ("keep-alive 100 B   req/s",            "ka-100b", "rps",            "int", True),
        ("keep-alive 100 B   req/server-CPU-s", "ka-100b", "req_per_cpu_s",  "int", True),
        ("keep-alive 100 B   wrk CPU %",        "ka-100b", "client_cpu_pct", "int", None),
        ("keep-alive 1 KiB   req/s",            "ka-1k",   "rps",            "int", True),
        ("keep-alive 1 KiB   req/server-CPU-s", "ka-1k",   "req_per_cpu_s",  "int", True),
        ("keep-alive 1 KiB   wrk CPU %",        "ka-1k",   "client_cpu_pct", "int", None),
        ("conn/request 1 KiB req/s",            "ab-1k",   "rps",            "int", True),
        ("conn/request 1 KiB server CPU us/req", "ab-1k",  "cpu_us_per_req", "f1",  False),
        ("conn/request 1 KiB ab CPU %",         "ab-1k",   "client_cpu_pct", "int", None),
        ("256 MiB download   GB/s (median run)", "dl",     "best_gbps",      "f2",  True),
        ("256 MiB download   server CPU s (median run)", "dl", "best_server_cpu_s", "f2", False),
        ("RSS MiB after start (process tree)",  "start",   "rss_mib",        "f1",  None),
        ("other load % on bench CPUs (max)",    "all",     "max_other_pct",  "int", None),
    ]
    cw = max(11, max((len(SERVER_LABEL.get(s, s)) for s in order), default=0) + 2)
    nruns = sorted({int(v.get("runs", 1)) for cs in res.values()
                    for c, v in cs.items() if c in ("ka-100b", "ka-1k", "ab-1k")})
    ndl = sorted({int(v.get("runs", 1)) for cs in res.values()
                  for c, v in cs.items() if c == "dl"})
    w0 = print_table("Results (raw figures; '-' = not measured; wrk/ab: the median of "
                     f"{'/'.join(map(str, nruns)) or '-'} run(s) by req/s, with that run's CPU; "
                     f"download: the median of {'/'.join(map(str, ndl)) or '-'})",
                     rows, order, get, SERVER_LABEL, cw)
    errs = []
    for s in order:
        for c in ("ka-100b", "ka-1k", "ab-1k"):
            e = (get(s, c, "errors") or 0) + (get(s, c, "non2xx") or 0)
            if e:
                errs.append(f"{SERVER_LABEL.get(s, s)} {c}: {int(e)} errors/non-2xx")
            if get(s, c, "failed"):
                errs.append(f"{SERVER_LABEL.get(s, s)} {c}: {int(get(s, c, 'failed'))} run(s) produced no result")
    if errs:
        print("Errors seen: " + "; ".join(errs))

    # wrk / ab saturation note
    sat = []
    for s in order:
        for c in ("ka-100b", "ka-1k", "ab-1k"):
            p = get(s, c, "client_cpu_pct")
            if p is not None and p >= a.saturation:
                sat.append(f"{SERVER_LABEL.get(s, s)} {c} ({p:.0f}%)")
    if sat:
        print(f"Load generator near one full core (>= {a.saturation:.0f}% CPU) in: "
              + ", ".join(sat)
              + ".\n  There req/s is capped by the client; compare requests per "
                "server-CPU-second instead.")

    disturbed_note(order, ("ka-100b", "ka-1k", "ab-1k", "dl"), get, SERVER_LABEL, a.other,
                   "generator")

    # ratios loopkit / peer
    if "loopkit" in res:
        peers = [p for p in ["base", "lighttpd", "nginx-ofc", "nginx", "python"] if p in res]
        ratio_rows = [
            ("keep-alive 100 B   req/s",             "ka-100b", "rps",           True,  {"lighttpd": 1.1}),
            ("keep-alive 100 B   req/server-CPU-s",  "ka-100b", "req_per_cpu_s", True,  {"lighttpd": 1.1}),
            ("keep-alive 1 KiB   req/s",             "ka-1k",   "rps",           True,  {"lighttpd": 1.1}),
            ("keep-alive 1 KiB   req/server-CPU-s",  "ka-1k",   "req_per_cpu_s", True,  {"lighttpd": 1.1}),
            ("conn/request 1 KiB req/s",             "ab-1k",   "rps",           True,
             {"lighttpd": 1.0, "nginx": 1.0, "nginx-ofc": 1.0}),
            ("conn/request 1 KiB server CPU us/req", "ab-1k",   "cpu_us_per_req", False,
             {"lighttpd": 1.0, "nginx": 1.0, "nginx-ofc": 1.0}),
            ("256 MiB download   GB/s",              "dl",      "best_gbps",     True,
             {"nginx": 1.0, "nginx-ofc": 1.0}),
        ]
        print()
        print(RATIO_HEADING)
        hdr = [SERVER_LABEL.get(p, p) for p in peers]
        print("".ljust(w0) + "".join(h.rjust(cw + 4) for h in hdr))
        for title, case, metric, higher, targets in ratio_rows:
            lk = get("loopkit", case, metric)
            cells = [ratio_cell(lk, get(p, case, metric), targets.get(p), higher) for p in peers]
            if any(c != "-" for c in cells):
                print(title.ljust(w0) + "".join(c.rjust(cw + 4) for c in cells))

        # memory
        st = res.get("loopkit", {}).get("start", {})
        idle = res.get("loopkit", {}).get("idle", {})
        if st or idle:
            print()
            print("Memory (loopkit)")
            L = 46

            def line(label, text):
                print(f"  {label:<{L}} {text}")
            if "idle_rss_kib" in idle:
                v = idle["idle_rss_kib"] / 1024
                line("RSS right after start (no request yet)",
                     f"{v:6.1f} MiB   target <= 4 MiB{'' if v <= 4 else '  (not met)'}")
            if "probe_rss_kib" in idle:
                line("RSS after one request", f"{idle['probe_rss_kib'] / 1024:6.1f} MiB")
            if idle.get("rss_kib", -1) >= 0:
                v = idle["rss_kib"] / 1024
                ok = int(idle.get("conns_ok", 0))
                want = int(idle.get("conns_wanted", 0))
                line(f"RSS holding {ok:,} idle keep-alive connections",
                     f"{v:6.1f} MiB   target <= 64 MiB (for 10,000){'' if v <= 64 else '  (not met)'}")
                base = idle.get("probe_rss_kib", idle.get("idle_rss_kib"))
                if base is not None and ok:
                    line("growth per idle connection",
                         f"{(idle['rss_kib'] - base) * 1024 / ok:6.0f} bytes")
                if idle.get("hwm_kib", -1) >= 0:
                    line("peak RSS (VmHWM)", f"{idle['hwm_kib'] / 1024:6.1f} MiB")
                line("connections wanted / answered / failed",
                     f"{want:,} / {ok:,} / {int(idle.get('conns_failed', 0)):,}")
                line("of those still open at the end", f"{int(idle.get('conns_open_after', 0)):,}")
                cs = int(idle.get("curl_status", 0))
                line("separate curl request meanwhile",
                     f"HTTP {cs or 'none'} in {idle.get('curl_ms', 0):.0f} ms"
                     f"{'' if cs == 200 else '  (NOT served)'}")
    else:
        print()
        print("loopkit: no figures (not built or did not start), so no ratios.")

    write_json(res, a.json)
    return 0


def _idle_args(p):
    add_client_args(p)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/1k")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--deadline", type=float, default=60)
    p.add_argument("--settle", type=float, default=0.5)


def _report_args(p):
    add_report_args(p)
    p.add_argument("--saturation", type=float, default=90)


if __name__ == "__main__":
    cli(__doc__, {
        "port": (cmd_port, lambda p: None),
        "rss": (cmd_rss, lambda p: p.add_argument("pid", type=int)),
        "load": (cmd_load, lambda p: add_load_args(p, ["wrk", "ab", "curl"])),
        "idle": (cmd_idle, _idle_args),
        "report": (cmd_report, _report_args),
    })
