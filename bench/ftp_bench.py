#!/usr/bin/python3
"""Helper for bench/ftp.sh: FTP measurements against loopkit, vsftpd and
pyftpdlib.  Standard library only; run with /usr/bin/python3.  It reuses the
/proc readers and the results-file format of bench/bench.py.

Subcommands
  reap --log F -- CMD...    run CMD as a child subreaper (PR_SET_CHILD_SUBREAPER):
                            every descendant of CMD that is orphaned (vsftpd's
                            per-session processes are not all reaped by vsftpd)
                            is reaped here, and its CPU time (wait4 rusage,
                            utime+stime, microseconds) is appended to F as
                            "pid<TAB>seconds".  SIGTERM/SIGINT go to CMD.
  load  --results F --server S --case C --pid PID --kind curl|lftp [--reaped F]
        [--exclude PID] [--files N --src DIR --dst DIR] [--timeout T] -- CMD...
                            run CMD (curl or lftp, already wrapped in taskset),
                            measure the server's CPU time, parse and check the
                            client's output, append results to F
  greet --results F --server S --port P [--count 20] [--client-cpu 0]
                            connect, time until the complete "220" greeting
                            line arrives, send QUIT; COUNT times, one after another
  report --results F [--json OUT]
                            print the table and the ratios

Server CPU time of a run = (utime+stime of every live process of the server's
process tree, after the run minus before; from /proc/PID/task/TID/sched
se.sum_exec_runtime (ns resolution) when the kernel has it, else
/proc/PID/stat in clock ticks) + (cutime+cstime of those processes: children
they reaped) + (CPU of the descendants reaped by the `reap` wrapper).  Before
and after a run the helper waits until the tree is back to the one listening
process, so every session process of the run has exited and been reaped by
someone who accounts for it.  See bench/README.md.

Nothing here passes or fails on timing: the exit status is non-zero only for
usage errors or when the helper itself cannot run.
"""

import argparse
import ctypes
import filecmp
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: /proc readers, results file)

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU accounting

def _sched_runtime_s(pid):
    """Sum of se.sum_exec_runtime (ms in the file) over the live threads of pid,
    in seconds; None when the kernel does not expose it."""
    total = 0.0
    seen = False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/sched") as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":", 1)[1])
                        seen = True
                        break
        except (OSError, ValueError):
            continue
    return total / 1e3 if seen else None


def reaped_s(path):
    """CPU seconds of all processes the reap wrapper has reaped so far."""
    if not path:
        return 0.0, 0
    total, n = 0.0, 0
    try:
        with open(path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) == 2:
                    total += float(parts[1])
                    n += 1
    except FileNotFoundError:
        pass
    return total, n


def server_pids(pid, exclude):
    return [p for p in bench.process_tree(pid) if p not in exclude]


def server_cpu(pid, exclude, reaped):
    """(precise seconds, tick-based seconds, pids, live threads) of the server tree."""
    precise = ticks = 0.0
    pids = server_pids(pid, exclude)
    nthreads = 0
    for p in pids:
        try:
            f = bench._stat_fields(p)
        except OSError:
            continue
        own_t = (int(f[11]) + int(f[12])) / CLK_TCK
        kids_t = (int(f[13]) + int(f[14])) / CLK_TCK
        own = _sched_runtime_s(p)
        precise += (own if own is not None else own_t) + kids_t
        ticks += own_t + kids_t
        try:
            nthreads += len(os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    r, _ = reaped_s(reaped)
    return precise + r, ticks + r, pids, nthreads


def settle(pid, exclude, want=1, limit=3.0):
    """Wait until the server tree (minus exclude) is down to `want` processes:
    the session processes of the last run have exited and were reaped."""
    deadline = time.monotonic() + limit
    while True:
        n = len(server_pids(pid, exclude))
        if n <= want:
            time.sleep(0.05)   # the reap wrapper writes its line right after wait4
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# ---------------------------------------------------------------- reap wrapper

def cmd_reap(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        print("reap: no command", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"reap: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}",
              file=sys.stderr)
    child = os.posix_spawnp(cmd[0], cmd, os.environ)

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    me = os.getpid()
    server_gone = None
    while True:
        try:
            if server_gone is None:
                pid, st, ru = os.wait4(-1, 0)
            else:
                pid, st, ru = os.wait4(-1, os.WNOHANG)
                if pid == 0:
                    # the server is gone; descendants it left behind are ours
                    # now: TERM them, KILL after 2 s, give up after 5 s
                    waited = time.monotonic() - server_gone
                    if waited > 5:
                        break
                    sig = signal.SIGTERM if waited < 2 else signal.SIGKILL
                    for name in os.listdir("/proc"):
                        if name.isdigit():
                            try:
                                if int(bench._stat_fields(name)[1]) == me:
                                    os.kill(int(name), sig)
                            except (OSError, ValueError, IndexError):
                                pass
                    time.sleep(0.1)
                    continue
        except ChildProcessError:
            break
        if pid == child:
            status = os.waitstatus_to_exitcode(st)
            server_gone = time.monotonic()
            continue
        with open(a.log, "a") as f:
            f.write(f"{pid}\t{ru.ru_utime + ru.ru_stime:.6f}\n")
    return status if status >= 0 else 128 - status


# ---------------------------------------------------------------- load runs

def parse_curl(out):
    # -w '%{response_code} %{size_download} %{time_total} %{time_pretransfer} %{time_starttransfer}'
    r = {}
    m = re.search(r"(\d{3}) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)\s*$", out.strip())
    if m:
        r["status"] = int(m.group(1))
        r["bytes"] = int(m.group(2))
        r["duration_s"] = float(m.group(3))
        r["pretransfer_s"] = float(m.group(4))
        r["starttransfer_s"] = float(m.group(5))
        xfer = r["duration_s"] - r["pretransfer_s"]
        if xfer > 0:
            r["gbps"] = r["bytes"] / xfer / 1e9
        if r["duration_s"] > 0:
            r["gbps_whole"] = r["bytes"] / r["duration_s"] / 1e9
    return r


def check_mirror(src, dst, want):
    """(files found, files that differ or are missing)"""
    try:
        names = sorted(os.listdir(dst))
    except OSError:
        return 0, want
    bad = 0
    for n in sorted(os.listdir(src)):
        s, d = os.path.join(src, n), os.path.join(dst, n)
        if not os.path.isfile(d) or not filecmp.cmp(s, d, shallow=False):
            bad += 1
    return len(names), bad


def cmd_load(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not os.path.exists(f"/proc/{a.pid}"):
        print(f"  {a.server} {a.case}: server pid {a.pid} is gone", file=sys.stderr)
        return 1
    exclude = {int(x) for x in a.exclude.split(",") if x} if a.exclude else set()
    cpus = {int(x) for x in a.cpus.split(",") if x != ""}
    r = {}
    if not settle(a.pid, exclude):
        r["unsettled_before"] = 1
    st0 = bench.cpu_stat(cpus)
    cpu0, tick0, _, thr0 = server_cpu(a.pid, exclude, a.reaped)
    t0 = time.monotonic()
    t0_wall = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=a.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        p.kill()          # only the child this helper started
        out, _ = p.communicate()
        timed_out = True
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not settle(a.pid, exclude):
        r["unsettled_after"] = 1
    cpu1, tick1, _, thr1 = server_cpu(a.pid, exclude, a.reaped)
    st1 = bench.cpu_stat(cpus)
    out = out.decode("utf-8", "replace")
    with open(a.log, "a") if a.log else open(os.devnull, "w") as lf:
        lf.write(f"=== {a.server} {a.case}: {' '.join(cmd)}\n{out}\n")
    if a.kind == "curl":
        r.update(parse_curl(out))
        ok = r.get("status") == 226 and (a.bytes is None or r.get("bytes") == a.bytes)
    else:
        r["duration_s"] = wall
        stamps = [float(x) for x in re.findall(r"^(\d{9,}\.\d+)\s*$", out, re.M)]
        if len(stamps) >= 2:
            r["login_s"] = stamps[0] - t0_wall
            r["mirror_s"] = stamps[1] - stamps[0]
        found, bad = check_mirror(a.src, a.dst, a.files)
        r["files_found"] = found
        r["files_bad"] = bad
        if wall > 0:
            r["files_per_s"] = a.files / wall
        if r.get("mirror_s", 0) > 0:
            r["mirror_files_per_s"] = a.files / r["mirror_s"]
        ok = p.returncode == 0 and found == a.files and bad == 0 and "mirror_s" in r
    r["server_cpu_s"] = cpu1 - cpu0
    r["server_cpu_ticks_s"] = tick1 - tick0
    if thr1 != thr0:
        r["threads_changed"] = 1
    r["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    r["wall_s"] = wall
    other = (st1[0] - st0[0]) / CLK_TCK - r["server_cpu_s"] - r["client_cpu_s"]
    r["other_cpu_pct"] = max(0.0, 100.0 * other / wall) if wall > 0 else 0.0
    r["steal_pct"] = 100.0 * (st1[1] - st0[1]) / CLK_TCK / wall if wall > 0 else 0.0
    if a.kind == "curl" and r.get("bytes"):
        r["cpu_s_per_gb"] = r["server_cpu_s"] / (r["bytes"] / 1e9)
    if a.kind == "lftp":
        r["cpu_us_per_file"] = r["server_cpu_s"] * 1e6 / a.files
    if timed_out:
        r["timed_out"] = 1
    if p.returncode not in (0, None) and not timed_out:
        r["exit"] = p.returncode
    if not ok:
        r["failed"] = 1
        tail = "\n    ".join(out.strip().splitlines()[-6:])
        print(f"  {a.server} {a.case}: FAILED (exit {p.returncode}"
              f"{', timed out' if timed_out else ''}"
              + (f", {r.get('files_found')}/{a.files} files, {r.get('files_bad')} differ"
                 if a.kind == "lftp" else "")
              + f"):\n    {tail}", file=sys.stderr)
    for k, v in r.items():
        bench.emit(a.results, a.server, a.case, k, v)
    if a.kind == "curl":
        msg = (f"{r.get('gbps', 0):.2f} GB/s transfer phase ({r.get('gbps_whole', 0):.2f} whole run,"
               f" {r.get('pretransfer_s', 0) * 1e3:.0f} ms before the transfer), "
               f"reply {r.get('status', '-')}, {r.get('bytes', 0)} bytes, "
               f"server CPU {r['server_cpu_s']:.3f}s")
    else:
        msg = (f"{r.get('files_per_s', 0):,.0f} files/s whole session ({wall * 1e3:.0f} ms), "
               f"{r.get('mirror_files_per_s', 0):,.0f} files/s mirror phase "
               f"({r.get('mirror_s', 0) * 1e3:.0f} ms; login {r.get('login_s', 0) * 1e3:.0f} ms), "
               f"{r.get('files_found', 0)} files ({r.get('files_bad', 0)} differ), "
               f"server CPU {r['server_cpu_s']:.3f}s")
    msg += f", other load {r['other_cpu_pct']:.0f}%"
    if r["steal_pct"] >= 1:
        msg += f", steal {r['steal_pct']:.0f}%"
    for k in ("unsettled_before", "unsettled_after"):
        if r.get(k):
            msg += f", server sessions still alive ({k.split('_')[1]} the run, after 3 s)"
    print(f"  {a.server:<11} {a.case:<9} {msg}", flush=True)
    return 0


# ---------------------------------------------------------------- greeting

def _greet_once(port, timeout):
    """Seconds from connect() to the complete 220 line; (None, why) on failure."""
    t0 = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        return None, f"connect: {e}"
    buf = b""
    try:
        deadline = t0 + timeout
        while True:
            m = re.search(rb"(?:^|\r?\n)(\d{3}) [^\r\n]*\r?\n", buf)
            if m:
                break
            left = deadline - time.perf_counter()
            if left <= 0:
                return None, f"no complete reply in {timeout:.0f} s (got {buf[:80]!r})"
            s.settimeout(left)
            d = s.recv(4096)
            if not d:
                return None, f"closed by server (got {buf[:80]!r})"
            buf += d
        t = time.perf_counter() - t0
        if m.group(1) != b"220":
            return None, f"reply {buf[:80]!r}"
        try:
            s.settimeout(1)
            s.sendall(b"QUIT\r\n")
            s.recv(4096)
        except OSError:
            pass
        return t, buf.split(b"\n", 1)[0].decode("latin-1").strip()
    except OSError as e:
        return None, f"{e} (got {buf[:80]!r})"
    finally:
        s.close()


def cmd_greet(a):
    if a.client_cpu is not None:
        try:
            os.sched_setaffinity(0, {a.client_cpu})
        except OSError:
            pass
    times, errors, text = [], [], ""
    for _ in range(a.count):
        t, info = _greet_once(a.port, a.timeout)
        if t is None:
            errors.append(info)
        else:
            times.append(t)
            text = info
        time.sleep(a.pause)
    r = {"count": a.count, "ok": len(times), "errors": len(errors)}
    if times:
        r["median_ms"] = statistics.median(times) * 1e3
        r["min_ms"] = min(times) * 1e3
        r["max_ms"] = max(times) * 1e3
    for k, v in r.items():
        bench.emit(a.results, a.server, f"greet@{a.round}", k, v)
    msg = (f"median {r.get('median_ms', 0):.1f} ms (min {r.get('min_ms', 0):.1f}, "
           f"max {r.get('max_ms', 0):.1f}) over {len(times)}/{a.count}: {text!r}")
    if errors:
        msg += f"; {len(errors)} failed, first: {errors[0]}"
    print(f"  {a.server:<11} {'greet':<9} {msg}", flush=True)
    return 0


# ---------------------------------------------------------------- report

LABEL = {"loopkit": "loopkit", "loopkit-s50": "loopkit-s50",
         "vsftpd": "vsftpd", "pyftpdlib": "pyftpdlib"}
ORDER = ["loopkit", "loopkit-s50", "vsftpd", "pyftpdlib"]
PEERS = ["vsftpd", "pyftpdlib"]


def _best(runs, key):
    good = [v for v in runs if isinstance(v.get(key), float) and not v.get("failed")]
    return max(good, key=lambda v: v[key]) if good else None


def summarize(res):
    """Fold the per-run cases (retr@1.2, lftp@1.3, greet@1) into one entry each."""
    out = {}
    for srv, cases in res.items():
        groups = {}
        for c, v in cases.items():
            groups.setdefault(c.split("@", 1)[0], []).append(v)
        s = out.setdefault(srv, {})
        if "retr" in groups:
            runs = groups["retr"]
            b = _best(runs, "gbps")
            good = [v for v in runs if not v.get("failed") and v.get("bytes")]
            d = {"runs": len(runs), "failed": sum(1 for v in runs if v.get("failed"))}
            if b:
                d.update(gbps=b["gbps"], gbps_whole=b.get("gbps_whole"),
                         best_cpu_s=b["server_cpu_s"], best_cpu_s_per_gb=b.get("cpu_s_per_gb"),
                         client_cpu_s=b.get("client_cpu_s"),
                         min_gbps=min(v["gbps"] for v in good if "gbps" in v),
                         median_gbps=statistics.median(v["gbps"] for v in good if "gbps" in v))
            if good:
                gb = sum(v["bytes"] for v in good) / 1e9
                d["cpu_s_per_gb"] = sum(v["server_cpu_s"] for v in good) / gb
                d["cpu_ticks_s_per_gb"] = sum(v["server_cpu_ticks_s"] for v in good) / gb
                d["pretransfer_ms"] = min(v["pretransfer_s"] for v in good) * 1e3
                d["mib"] = good[0]["bytes"] / 2**20
            d["other_pct"] = max((v.get("other_cpu_pct", 0) for v in runs), default=0)
            d["steal_pct"] = max((v.get("steal_pct", 0) for v in runs), default=0)
            s["retr"] = d
        if "lftp" in groups:
            runs = groups["lftp"]
            b = _best(runs, "files_per_s")
            bm = _best(runs, "mirror_files_per_s")
            d = {"runs": len(runs), "failed": sum(1 for v in runs if v.get("failed"))}
            if b:
                d.update(files_per_s=b["files_per_s"], session_ms=b["duration_s"] * 1e3,
                         login_ms=b.get("login_s", 0) * 1e3,
                         client_cpu_ms=b.get("client_cpu_s", 0) * 1e3)
            if bm:
                d.update(mirror_files_per_s=bm["mirror_files_per_s"],
                         mirror_ms=bm["mirror_s"] * 1e3)
            good = [v for v in runs if not v.get("failed")]
            if good:
                d["median_files_per_s"] = statistics.median(v["files_per_s"] for v in good)
                d["median_mirror_files_per_s"] = statistics.median(
                    v.get("mirror_files_per_s", 0) for v in good)
                d["cpu_us_per_file"] = statistics.median(v["cpu_us_per_file"] for v in good)
            d["other_pct"] = max((v.get("other_cpu_pct", 0) for v in runs), default=0)
            d["steal_pct"] = max((v.get("steal_pct", 0) for v in runs), default=0)
            s["lftp"] = d
        if "greet" in groups:
            runs = [v for v in groups["greet"] if "median_ms" in v]
            d = {"errors": sum(v.get("errors", 0) for v in groups["greet"])}
            if runs:
                # several rounds: the median of the rounds' medians
                d["median_ms"] = statistics.median(v["median_ms"] for v in runs)
                d["min_ms"] = min(v["min_ms"] for v in runs)
                d["max_ms"] = max(v["max_ms"] for v in runs)
                d["count"] = sum(v.get("ok", 0) for v in runs)
            s["greet"] = d
    return out


def cmd_report(a):
    res = summarize(bench.read_results(a.results))
    order = [s for s in ORDER if s in res] + sorted(s for s in res if s not in ORDER)

    def get(s, c, m):
        return res.get(s, {}).get(c, {}).get(m)

    mibs = sorted({v["retr"]["mib"] for v in res.values() if "mib" in v.get("retr", {})})
    big = f"{mibs[0]:g} MiB" if len(mibs) == 1 else "big file"
    rows = [
        (f"{big} RETR  GB/s, transfer phase (best)", "retr", "gbps", "f2"),
        (f"{big} RETR  GB/s, transfer phase (median)", "retr", "median_gbps", "f2"),
        (f"{big} RETR  GB/s, whole curl run (best run)", "retr", "gbps_whole", "f2"),
        (f"{big} RETR  ms before the transfer (min)", "retr", "pretransfer_ms", "int"),
        (f"{big} RETR  server CPU s/GB (all runs)", "retr", "cpu_s_per_gb", "f3"),
        (f"{big} RETR  server CPU s/GB (best run)", "retr", "best_cpu_s_per_gb", "f3"),
        (f"{big} RETR  server CPU s/GB (ticks, all runs)", "retr", "cpu_ticks_s_per_gb", "f3"),
        (f"{big} RETR  curl CPU s (best run)", "retr", "client_cpu_s", "f3"),
        ("200 x 1 KiB lftp  files/s, whole session (best)", "lftp", "files_per_s", "int"),
        ("200 x 1 KiB lftp  files/s, whole session (median)", "lftp", "median_files_per_s", "int"),
        ("200 x 1 KiB lftp  session ms (best run)", "lftp", "session_ms", "int"),
        ("200 x 1 KiB lftp  start..logged in ms (best run)", "lftp", "login_ms", "int"),
        ("200 x 1 KiB lftp  lftp CPU ms (best run)", "lftp", "client_cpu_ms", "int"),
        ("200 x 1 KiB lftp  files/s, mirror phase (best)", "lftp", "mirror_files_per_s", "int"),
        ("200 x 1 KiB lftp  files/s, mirror phase (median)", "lftp", "median_mirror_files_per_s", "int"),
        ("200 x 1 KiB lftp  server CPU us/file (median)", "lftp", "cpu_us_per_file", "int"),
        ("greeting ms, median", "greet", "median_ms", "f1"),
        ("greeting ms, min", "greet", "min_ms", "f1"),
        ("greeting ms, max", "greet", "max_ms", "f1"),
    ]

    def fmt(v, kind):
        if v is None:
            return "-"
        return {"int": f"{v:,.0f}", "f1": f"{v:.1f}", "f2": f"{v:.2f}", "f3": f"{v:.3f}"}[kind]

    w0 = max(len(r[0]) for r in rows) + 2
    cw = 13
    nretr = sorted({v["retr"]["runs"] for v in res.values() if "retr" in v})
    nlftp = sorted({v["lftp"]["runs"] for v in res.values() if "lftp" in v})
    print()
    print(f"Results (raw figures; '-' = not measured; RETR: best of {'/'.join(map(str, nretr)) or '-'}"
          f" curl runs; lftp: best of {'/'.join(map(str, nlftp)) or '-'} sessions;"
          " greeting: median of the connections)")
    print("".ljust(w0) + "".join(LABEL.get(s, s).rjust(cw) for s in order))
    for title, case, metric, kind in rows:
        vals = [get(s, case, metric) for s in order]
        if all(v is None for v in vals):
            continue
        print(title.ljust(w0) + "".join(fmt(v, kind).rjust(cw) for v in vals))
    notes = []
    for s in order:
        for c in ("retr", "lftp"):
            f = get(s, c, "failed")
            if f:
                notes.append(f"{LABEL.get(s, s)} {c}: {f} of {get(s, c, 'runs')} run(s) failed")
        e = get(s, "greet", "errors")
        if e:
            notes.append(f"{LABEL.get(s, s)} greeting: {e} connection(s) got no 220")
    if notes:
        print("Failures: " + "; ".join(notes))
    busy = []
    for s in order:
        for c in ("retr", "lftp"):
            o, st = get(s, c, "other_pct") or 0, get(s, c, "steal_pct") or 0
            if o >= a.other or st >= 5:
                busy.append(f"{LABEL.get(s, s)} {c} ({o:.0f}%{f', steal {st:.0f}%' if st >= 5 else ''})")
    if busy:
        print(f"Other work on the bench CPUs (>= {a.other:.0f}% of a CPU besides server and client)"
              " during: " + ", ".join(busy) + ".\n  Those figures are disturbed; rerun on a quiet machine.")

    lk = [s for s in ("loopkit", "loopkit-s50") if s in res]
    peers = [p for p in PEERS if p in res]
    if lk and peers:
        fast = None
        cand = [(get(p, "retr", "gbps"), p) for p in peers if get(p, "retr", "gbps")]
        if cand:
            fast = max(cand)[1]
        ratio_rows = [
            # title, server, case, metric, higher is better, {peer: target}
            (f"{big} RETR  GB/s (transfer phase)", "loopkit", "retr", "gbps", True,
             {fast: 1.0} if fast else {}),
            (f"{big} RETR  GB/s (medians)", "loopkit", "retr", "median_gbps", True, {}),
            (f"{big} RETR  server CPU per GB", "loopkit", "retr", "cpu_s_per_gb", False,
             {p: 1.0 for p in peers}),
            ("lftp files/s, whole session", "loopkit", "lftp", "files_per_s", True, {"vsftpd": 1.2}),
            ("lftp files/s, whole session (medians)", "loopkit", "lftp", "median_files_per_s", True, {}),
            ("lftp files/s, mirror phase", "loopkit", "lftp", "mirror_files_per_s", True, {}),
            ("lftp server CPU per file", "loopkit", "lftp", "cpu_us_per_file", False, {}),
            ("--sniff-ms 50: lftp files/s, whole session", "loopkit-s50", "lftp", "files_per_s", True,
             {"vsftpd": 1.2}),
            ("--sniff-ms 50: lftp files/s, whole (medians)", "loopkit-s50", "lftp", "median_files_per_s",
             True, {}),
            ("--sniff-ms 50: lftp files/s, mirror phase", "loopkit-s50", "lftp", "mirror_files_per_s",
             True, {}),
        ]
        print()
        print("Ratios loopkit / peer  (target in brackets: >= for rates, <= for CPU;"
              " '*' = target not met; informational, never a failure)")
        if fast:
            print(f"  faster peer for the {big} RETR: {LABEL.get(fast, fast)}")
        print("".ljust(w0) + "".join(LABEL.get(p, p).rjust(cw + 4) for p in peers))
        for title, srv, case, metric, higher, targets in ratio_rows:
            mine = get(srv, case, metric)
            if mine is None:
                continue
            cells = []
            for p in peers:
                pv = get(p, case, metric)
                if not pv:
                    cells.append("-")
                    continue
                r = mine / pv
                t = targets.get(p)
                if t is None:
                    cells.append(f"{r:.2f}")
                else:
                    met = r >= t if higher else r <= t
                    cells.append(f"{r:.2f}{' ' if met else '*'}[{t:.1f}]")
            print(title.ljust(w0) + "".join(c.rjust(cw + 4) for c in cells))
        g = [(LABEL.get(s, s), get(s, "greet", "median_ms")) for s in order
             if get(s, "greet", "median_ms") is not None]
        if g:
            print("time to the FTP greeting, median ms: "
                  + ", ".join(f"{n} {v:.1f}" for n, v in g))
    else:
        print()
        print("loopkit or both peers missing: no ratios.")

    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        print(f"\nJSON: {a.json}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)

    p = sub.add_parser("reap")
    p.add_argument("--log", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)

    p = sub.add_parser("load")
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--exclude", default="", help="pids of the tree that are not the server")
    p.add_argument("--reaped", help="the reap wrapper's log")
    p.add_argument("--kind", choices=["curl", "lftp"], required=True)
    p.add_argument("--bytes", type=int, help="expected size of the download")
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--src", help="lftp: the directory mirrored")
    p.add_argument("--dst", help="lftp: the local copy")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log")
    p.add_argument("--cpus", default="0,1")
    p.add_argument("cmd", nargs=argparse.REMAINDER)

    p = sub.add_parser("greet")
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--round", default="1")
    p.add_argument("--client-cpu", type=int)

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--json")
    p.add_argument("--other", type=float, default=10)

    a = ap.parse_args()
    fn = {"reap": cmd_reap, "load": cmd_load, "greet": cmd_greet, "report": cmd_report}[a.sub]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
