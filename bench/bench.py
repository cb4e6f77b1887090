#!/usr/bin/python3
"""Helper for bench/http.sh: measuring a load run, the idle-connection memory
test, and the final table.  Standard library only; run with /usr/bin/python3.

Subcommands
  port                      print a free TCP port on 127.0.0.1
  rss PID                   print VmRSS of PID's process tree in KiB
  load  --results F --server S --case C --pid PID --kind wrk|ab|curl [--timeout T] -- CMD...
                            run CMD (the load generator, already wrapped in taskset),
                            measure server CPU (utime+stime over PID's process tree,
                            from /proc/PID/stat) and the generator's own CPU (rusage),
                            parse the generator's output, append results to F
  idle  --results F --server S --pid PID --port P [--conns N] [--path /1k] [--client-cpu 0]
                            open N keep-alive connections, each sends one request and
                            reads the full response, then measure RSS and check that a
                            separate curl request is still served
  report --results F [--json OUT]
                            print the table and ratios

Results file: one "server<TAB>case<TAB>metric<TAB>value" line per figure.
Nothing here passes or fails on timing: exit status is non-zero only for usage
errors or when the helper itself cannot run.
"""

import argparse
import errno
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc helpers

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the comm field (index 0 = state)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    return data[data.rindex(")") + 2:].split()


def _ppid_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def process_tree(pid):
    """pid and all its descendants (nginx master + worker, for example)."""
    kids = _ppid_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_ticks(pid):
    """utime+stime (+cutime+cstime, for reaped children) summed over the tree."""
    total = 0
    for p in process_tree(pid):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        # after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total


def cpu_stat(cpus):
    """Summed /proc/stat ticks of the given CPUs: (busy without irq/softirq, steal)."""
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if not parts[0].startswith("cpu") or parts[0] == "cpu":
                continue
            if int(parts[0][3:]) not in cpus:
                continue
            v = [int(x) for x in parts[1:]]
            # user nice system idle iowait irq softirq steal ...
            busy += v[0] + v[1] + v[2]
            steal += v[7] if len(v) > 7 else 0
    return busy, steal


def vm_kib(pid, key="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree_rss_kib(pid):
    total = 0
    for p in process_tree(pid):
        v = vm_kib(p)
        if v:
            total += v
    return total


# ---------------------------------------------------------------- results file

def emit(results, server, case, metric, value):
    with open(results, "a") as f:
        f.write(f"{server}\t{case}\t{metric}\t{value}\n")


def read_results(path):
    res = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 4:
                    continue
                s, c, m, v = parts
                try:
                    v = float(v)
                except ValueError:
                    pass
                res.setdefault(s, {}).setdefault(c, {})[m] = v
    except FileNotFoundError:
        pass
    return res


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
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_rss(a):
    print(tree_rss_kib(a.pid))


def cmd_load(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not os.path.exists(f"/proc/{a.pid}"):
        print(f"  {a.server} {a.case}: server pid {a.pid} is gone", file=sys.stderr)
        return 1
    cpus = {int(x) for x in a.cpus.split(",") if x != ""}
    st0 = cpu_stat(cpus)
    cpu0 = tree_cpu_ticks(a.pid)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=a.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        p.kill()          # only the child this helper started
        out, _ = p.communicate()
        timed_out = True
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN of this
    # helper, which starts no other child, so the totals are the generator's.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    cpu1 = tree_cpu_ticks(a.pid)
    st1 = cpu_stat(cpus)
    out = out.decode("utf-8", "replace")
    with open(a.log, "a") if a.log else open(os.devnull, "w") as lf:
        lf.write(f"=== {a.server} {a.case}: {' '.join(cmd)}\n{out}\n")
    parse = {"wrk": parse_wrk, "ab": parse_ab, "curl": parse_curl}[a.kind]
    r = parse(out)
    r["server_cpu_s"] = (cpu1 - cpu0) / CLK_TCK
    r["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    r["wall_s"] = wall
    r["client_cpu_pct"] = 100.0 * r["client_cpu_s"] / wall if wall > 0 else 0.0
    # CPU time on the bench's CPUs used by anything but the server and the
    # generator (other programs on the machine; some of our kernel work too),
    # and time stolen by the hypervisor, in % of one CPU over the run
    other = (st1[0] - st0[0]) / CLK_TCK - r["server_cpu_s"] - r["client_cpu_s"]
    r["other_cpu_pct"] = max(0.0, 100.0 * other / wall) if wall > 0 else 0.0
    r["steal_pct"] = 100.0 * (st1[1] - st0[1]) / CLK_TCK / wall if wall > 0 else 0.0
    if timed_out:
        r["timed_out"] = 1
    if p.returncode not in (0, None) and not timed_out:
        r["exit"] = p.returncode
    ok = ("rps" in r) if a.kind in ("wrk", "ab") else (r.get("status") == 200)
    if not ok:
        r["failed"] = 1
        tail = "\n".join(out.strip().splitlines()[-5:])
        print(f"  {a.server} {a.case}: no result (exit {p.returncode}"
              f"{', timed out' if timed_out else ''}): {tail}", file=sys.stderr)
    if a.kind in ("wrk", "ab") and r.get("requests") and r["server_cpu_s"] > 0:
        r["req_per_cpu_s"] = r["requests"] / r["server_cpu_s"]
        r["cpu_us_per_req"] = r["server_cpu_s"] * 1e6 / r["requests"]
    for k, v in r.items():
        emit(a.results, a.server, a.case, k, v)
    # one progress line
    if a.kind == "curl":
        msg = (f"{r.get('gbps', 0):.2f} GB/s, {r.get('bytes', 0)} bytes, "
               f"server CPU {r['server_cpu_s']:.2f}s")
    else:
        msg = (f"{r.get('rps', 0):,.0f} req/s, {r.get('requests', 0)} req, "
               f"server CPU {r['server_cpu_s']:.2f}s, "
               f"{a.kind} CPU {r['client_cpu_pct']:.0f}%, "
               f"errors {r.get('errors', 0)}, non-2xx {r.get('non2xx', 0)}")
    msg += f", other load {r['other_cpu_pct']:.0f}%"
    if r["steal_pct"] >= 1:
        msg += f", steal {r['steal_pct']:.0f}%"
    print(f"  {a.server:<10} {a.case:<10} {msg}", flush=True)
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
    if a.client_cpu is not None:
        try:
            os.sched_setaffinity(0, {a.client_cpu})
        except OSError:
            pass
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
    for k, v in r.items():
        emit(a.results, a.server, "idle", k, v)
    print(f"  {a.server:<10} idle       {done}/{a.conns} connections answered and held "
          f"({failed} failed, {still} still open at the end) in {setup_s:.1f}s; "
          f"RSS {rss / 1024 if rss else 0:.1f} MiB; other client: HTTP "
          f"{cr.get('status', 'none')} in {curl_ms:.0f} ms", flush=True)
    return 0


# ---------------------------------------------------------------- report

SERVER_LABEL = {
    "loopkit": "loopkit",
    "lighttpd": "lighttpd",
    "nginx-ofc": "nginx+ofc",
    "nginx": "nginx",
    "python": "python",
}


def _fmt(v, kind):
    if v is None:
        return "-"
    if kind == "int":
        return f"{v:,.0f}"
    if kind == "f1":
        return f"{v:.1f}"
    if kind == "f2":
        return f"{v:.2f}"
    return str(v)


def cmd_report(a):
    res = read_results(a.results)
    # several runs of a case ("ka-1k@1", "ka-1k@2", "dl@1".."dl@3", ...): the
    # best run (highest req/s or GB/s) stands for the case, whole (its CPU too)
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
            best = dict(max(good, key=lambda v: v[key]))
            best["runs"] = len(runs)
            best["min_" + key] = min(v[key] for v in good)
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
        ("256 MiB download   GB/s (best)",      "dl",      "best_gbps",      "f2",  True),
        ("256 MiB download   server CPU s (best run)", "dl", "best_server_cpu_s", "f2", False),
        ("RSS MiB after start (process tree)",  "start",   "rss_mib",        "f1",  None),
        ("other load % on bench CPUs (max)",    "all",     "max_other_pct",  "int", None),
    ]
    w0 = max(len(r[0]) for r in rows) + 2
    cols = [SERVER_LABEL.get(s, s) for s in order]
    cw = max(11, max((len(c) for c in cols), default=0) + 2)
    print()
    nruns = sorted({int(v.get("runs", 1)) for cs in res.values()
                    for c, v in cs.items() if c in ("ka-100b", "ka-1k", "ab-1k")})
    ndl = sorted({int(v.get("runs", 1)) for cs in res.values()
                  for c, v in cs.items() if c == "dl"})
    print("Results (raw figures; '-' = not measured; wrk/ab: best of "
          f"{'/'.join(map(str, nruns)) or '-'} run(s) by req/s, with that run's CPU; "
          f"download: best of {'/'.join(map(str, ndl)) or '-'})")
    print("".ljust(w0) + "".join(c.rjust(cw) for c in cols))
    for title, case, metric, kind, _ in rows:
        vals = [get(s, case, metric) for s in order]
        if all(v is None for v in vals):
            continue
        print(title.ljust(w0) + "".join(_fmt(v, kind).rjust(cw) for v in vals))
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

    busy = []
    for srv in order:
        for c in ("ka-100b", "ka-1k", "ab-1k", "dl"):
            o = get(srv, c, "other_cpu_pct") or 0
            st = get(srv, c, "steal_pct") or 0
            if o >= a.other or st >= 5:
                busy.append(f"{SERVER_LABEL.get(srv, srv)} {c} ({o:.0f}%"
                            f"{f', steal {st:.0f}%' if st >= 5 else ''})")
    if busy:
        print(f"Other work on the bench CPUs (>= {a.other:.0f}% of a CPU besides server and "
              "generator) during: " + ", ".join(busy)
              + ".\n  Those figures are disturbed; rerun on a quiet machine.")

    # ratios loopkit / peer
    if "loopkit" in res:
        peers = [p for p in ["lighttpd", "nginx-ofc", "nginx", "python"] if p in res]
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
        print("Ratios loopkit / peer  (target in brackets: >= for rates, <= for CPU per request;"
              " '*' = target not met; informational, never a failure)")
        hdr = [SERVER_LABEL.get(p, p) for p in peers]
        print("".ljust(w0) + "".join(h.rjust(cw + 4) for h in hdr))
        for title, case, metric, higher, targets in ratio_rows:
            lk = get("loopkit", case, metric)
            cells = []
            any_val = False
            for p in peers:
                pv = get(p, case, metric)
                if lk is None or pv is None or pv == 0:
                    cells.append("-")
                    continue
                any_val = True
                r = lk / pv
                t = targets.get(p)
                if t is None:
                    cells.append(f"{r:.2f}")
                else:
                    met = r >= t if higher else r <= t
                    cells.append(f"{r:.2f}{' ' if met else '*'}[{t:.1f}]")
            if any_val:
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

    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        print(f"\nJSON: {a.json}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)

    sub.add_parser("port")

    p = sub.add_parser("rss")
    p.add_argument("pid", type=int)

    p = sub.add_parser("load")
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--kind", choices=["wrk", "ab", "curl"], required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log")
    p.add_argument("--cpus", default="0,1", help="CPUs the server and generator run on")
    p.add_argument("cmd", nargs=argparse.REMAINDER)

    p = sub.add_parser("idle")
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/1k")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--deadline", type=float, default=60)
    p.add_argument("--settle", type=float, default=0.5)
    p.add_argument("--client-cpu", type=int)

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--json")
    p.add_argument("--saturation", type=float, default=90)
    p.add_argument("--other", type=float, default=10)

    a = ap.parse_args()
    fn = {"port": cmd_port, "rss": cmd_rss, "load": cmd_load, "idle": cmd_idle,
          "report": cmd_report}[a.sub]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
