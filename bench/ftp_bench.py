#!/usr/bin/python3
"""Helper for bench/ftp.sh: FTP measurements against loopkit, vsftpd and
pyftpdlib.  Standard library only; run with /usr/bin/python3.  It uses the
/proc readers and the results file of bench/benchlib.py.

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

Server CPU time of a run: as bench/benchlib.py says (shared with bench/bench.py, with the
results file and the report's pieces), plus the CPU of the descendants the `reap` wrapper
reaped. Before and after a run the helper waits until the tree is back to the one
listening process, so every session process of the run has exited and been reaped by
someone who accounts for it. See bench/README.md.

Nothing here passes or fails on timing: the exit status is non-zero only for usage
errors or when the helper itself cannot run.
"""

import ctypes
import filecmp
import os
import re
import signal
import socket
import statistics
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (RATIO_HEADING, add_client_args, add_load_args, add_report_args,  # noqa: E402
                      cli, disturbed_note, emit_all, load_note, measured_run, median_run, pin_to_cpu, print_table,
                      ratio_cell,
                      read_results, report_failure, server_gone, settle, stat_fields, write_json)


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
                                if int(stat_fields(name)[1]) == me:
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
    if server_gone(a):
        return 1
    exclude = {int(x) for x in a.exclude.split(",") if x}

    def before(r):
        if not settle(a.pid, exclude):
            r["unsettled_before"] = 1

    def after(r):
        if not settle(a.pid, exclude):
            r["unsettled_after"] = 1
    out, r, rc = measured_run(a, before, after)
    wall = r["wall_s"]
    if a.kind == "curl":
        r.update(parse_curl(out))
        ok = r.get("status") == 226 and (a.bytes is None or r.get("bytes") == a.bytes)
    else:
        r["duration_s"] = wall
        stamps = [float(x) for x in re.findall(r"^(\d{9,}\.\d+)\s*$", out, re.M)]
        if len(stamps) >= 2:
            r["login_s"] = stamps[0] - r["start_epoch"]
            r["mirror_s"] = stamps[1] - stamps[0]
        found, bad = check_mirror(a.src, a.dst, a.files)
        r["files_found"] = found
        r["files_bad"] = bad
        if wall > 0:
            r["files_per_s"] = a.files / wall
        if r.get("mirror_s", 0) > 0:
            r["mirror_files_per_s"] = a.files / r["mirror_s"]
        ok = rc == 0 and found == a.files and bad == 0 and "mirror_s" in r
    if a.kind == "curl" and r.get("bytes"):
        r["cpu_s_per_gb"] = r["server_cpu_s"] / (r["bytes"] / 1e9)
    if a.kind == "lftp":
        r["cpu_us_per_file"] = r["server_cpu_s"] * 1e6 / a.files
    if not ok:
        report_failure(a, r, rc, out, lines=6, extra=(
            f", {r.get('files_found')}/{a.files} files, {r.get('files_bad')} differ"
            if a.kind == "lftp" else ""))
    emit_all(a.results, a.server, a.case, r)
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
    msg += load_note(r)
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
    pin_to_cpu(a.client_cpu)
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
    emit_all(a.results, a.server, f"greet@{a.round}", r)
    msg = (f"median {r.get('median_ms', 0):.1f} ms (min {r.get('min_ms', 0):.1f}, "
           f"max {r.get('max_ms', 0):.1f}) over {len(times)}/{a.count}: {text!r}")
    if errors:
        msg += f"; {len(errors)} failed, first: {errors[0]}"
    print(f"  {a.server:<11} {'greet':<9} {msg}", flush=True)
    return 0


# ---------------------------------------------------------------- report

LABEL = {"loopkit": "loopkit", "loopkit-s50": "loopkit-s50", "base": "base",
         "vsftpd": "vsftpd", "pyftpdlib": "pyftpdlib"}
ORDER = ["loopkit", "loopkit-s50", "base", "vsftpd", "pyftpdlib"]
PEERS = ["base", "vsftpd", "pyftpdlib"]


def _best(runs, key):
    """The run that stands for a case: the median one (benchlib.median_run)."""
    return median_run(runs, key)


def _worst_load(runs):
    """The most other load and steal seen in a case's runs."""
    return {k: max((v.get(k, 0) for v in runs), default=0)
            for k in ("other_cpu_pct", "steal_pct")}


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
            d.update(_worst_load(runs))
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
            d.update(_worst_load(runs))
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
    res = summarize(read_results(a.results))
    order = [s for s in ORDER if s in res] + sorted(s for s in res if s not in ORDER)

    def get(s, c, m):
        return res.get(s, {}).get(c, {}).get(m)

    mibs = sorted({v["retr"]["mib"] for v in res.values() if "mib" in v.get("retr", {})})
    big = f"{mibs[0]:g} MiB" if len(mibs) == 1 else "big file"
    rows = [
        (f"{big} RETR  GB/s, transfer phase (median run)", "retr", "gbps", "f2"),
        (f"{big} RETR  GB/s, whole curl run (median run)", "retr", "gbps_whole", "f2"),
        (f"{big} RETR  ms before the transfer (min)", "retr", "pretransfer_ms", "int"),
        (f"{big} RETR  server CPU s/GB (all runs)", "retr", "cpu_s_per_gb", "f3"),
        (f"{big} RETR  server CPU s/GB (median run)", "retr", "best_cpu_s_per_gb", "f3"),
        (f"{big} RETR  server CPU s/GB (ticks, all runs)", "retr", "cpu_ticks_s_per_gb", "f3"),
        (f"{big} RETR  curl CPU s (median run)", "retr", "client_cpu_s", "f3"),
        ("200 x 1 KiB lftp  files/s, whole session (median run)", "lftp", "files_per_s", "int"),
        ("200 x 1 KiB lftp  session ms (median run)", "lftp", "session_ms", "int"),
        ("200 x 1 KiB lftp  start..logged in ms (median run)", "lftp", "login_ms", "int"),
        ("200 x 1 KiB lftp  lftp CPU ms (median run)", "lftp", "client_cpu_ms", "int"),
        ("200 x 1 KiB lftp  files/s, mirror phase (median run)", "lftp", "mirror_files_per_s", "int"),
        ("200 x 1 KiB lftp  server CPU us/file (median)", "lftp", "cpu_us_per_file", "int"),
        ("greeting ms, median", "greet", "median_ms", "f1"),
        ("greeting ms, min", "greet", "min_ms", "f1"),
        ("greeting ms, max", "greet", "max_ms", "f1"),
    ]

    cw = 13
    nretr = sorted({v["retr"]["runs"] for v in res.values() if "retr" in v})
    nlftp = sorted({v["lftp"]["runs"] for v in res.values() if "lftp" in v})
    w0 = print_table(f"Results (raw figures; '-' = not measured; RETR: median of "
                     f"{'/'.join(map(str, nretr)) or '-'} curl runs; lftp: median of "
                     f"{'/'.join(map(str, nlftp)) or '-'} sessions; greeting: median of the "
                     "connections)", rows, order, get, LABEL, cw)
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
    disturbed_note(order, ("retr", "lftp"), get, LABEL, a.other, "client")

    lk = [s for s in ("loopkit", "loopkit-s50") if s in res]
    peers = [p for p in PEERS if p in res]
    if lk and peers:
        fast = None
        cand = [(get(p, "retr", "gbps"), p) for p in peers if get(p, "retr", "gbps")]
        if cand:
            fast = max(cand)[1]
        ratio_rows = [
            # title, server, case, metric, higher is better, {peer: target}
            # The targets of issue 10: RETR >= 1.1x both peers, lftp session >= 1.3x vsftpd.
            (f"{big} RETR  GB/s (transfer phase)", "loopkit", "retr", "gbps", True, {p: 1.1 for p in peers}),
            (f"{big} RETR  GB/s (medians)", "loopkit", "retr", "median_gbps", True, {}),
            (f"{big} RETR  server CPU per GB", "loopkit", "retr", "cpu_s_per_gb", False, {}),
            ("lftp files/s, whole session", "loopkit", "lftp", "files_per_s", True, {"vsftpd": 1.3}),
            ("lftp files/s, whole session (medians)", "loopkit", "lftp", "median_files_per_s", True, {}),
            ("lftp files/s, mirror phase", "loopkit", "lftp", "mirror_files_per_s", True, {}),
            ("lftp server CPU per file", "loopkit", "lftp", "cpu_us_per_file", False, {}),
            ("--sniff-ms 50: lftp files/s, whole session", "loopkit-s50", "lftp", "files_per_s", True,
             {"vsftpd": 1.3}),
            ("--sniff-ms 50: lftp files/s, whole (medians)", "loopkit-s50", "lftp", "median_files_per_s",
             True, {}),
            ("--sniff-ms 50: lftp files/s, mirror phase", "loopkit-s50", "lftp", "mirror_files_per_s",
             True, {}),
        ]
        print()
        print(RATIO_HEADING)
        if fast:
            print(f"  faster peer for the {big} RETR: {LABEL.get(fast, fast)}")
        print("".ljust(w0) + "".join(LABEL.get(p, p).rjust(cw + 4) for p in peers))
        for title, srv, case, metric, higher, targets in ratio_rows:
            mine = get(srv, case, metric)
            if mine is None:
                continue
            cells = [ratio_cell(mine, get(p, case, metric), targets.get(p), higher) for p in peers]
            print(title.ljust(w0) + "".join(c.rjust(cw + 4) for c in cells))
        g = [(LABEL.get(s, s), get(s, "greet", "median_ms")) for s in order
             if get(s, "greet", "median_ms") is not None]
        if g:
            print("time to the FTP greeting, median ms: "
                  + ", ".join(f"{n} {v:.1f}" for n, v in g))
    else:
        print()
        print("loopkit or both peers missing: no ratios.")

    write_json(res, a.json)
    return 0


def _reap_args(p):
    p.add_argument("--log", required=True)
    p.add_argument("cmd", nargs="...")


def _load_args(p):
    p.add_argument("--exclude", default="", help="pids of the tree that are not the server")
    p.add_argument("--reaped", help="the reap wrapper's log")
    p.add_argument("--bytes", type=int, help="expected size of the download")
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--src", help="lftp: the directory mirrored")
    p.add_argument("--dst", help="lftp: the local copy")
    add_load_args(p, ["curl", "lftp"])


def _greet_args(p):
    add_client_args(p)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--timeout", type=float, default=5)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--round", default="1")


if __name__ == "__main__":
    cli(__doc__, {
        "reap": (cmd_reap, _reap_args),
        "load": (cmd_load, _load_args),
        "greet": (cmd_greet, _greet_args),
        "report": (cmd_report, add_report_args),
    })
