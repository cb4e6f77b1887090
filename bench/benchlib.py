"""benchlib.py - what bench/bench.py (HTTP) and bench/ftp_bench.py (FTP) share.

The /proc readers (process trees, CPU time per process tree, RSS, the CPUs' own counters),
the results file, one measured run of a client command, and the pieces of the final report
(number formats, the results table, loopkit/peer ratio cells, the disturbed-run note).
Standard library only; imported by the two helpers, never run by itself.

Server CPU time of a run = (utime+stime of every live process of the server's process tree,
after the run minus before; per thread from /proc/PID/task/TID/sched se.sum_exec_runtime, ns
resolution, when the kernel has it, else /proc/PID/stat in clock ticks) + (cutime+cstime of
those processes: children they reaped) + (CPU of descendants a reap wrapper accounted for).
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc readers

def stat_fields(pid):
    """Fields of /proc/PID/stat after the comm field (index 0 = state, 1 = ppid,
    11/12 = utime/stime, 13/14 = cutime/cstime)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    return data[data.rindex(")") + 2:].split()


def process_tree(pid):
    """pid and all its descendants (nginx master + worker, vsftpd's sessions)."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                kids.setdefault(int(stat_fields(name)[1]), []).append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def sched_runtime_s(pid):
    """Sum of se.sum_exec_runtime (ms in the file) over the live threads of pid, in
    seconds; None when the kernel does not expose it."""
    total, seen = 0.0, False
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
    """CPU seconds of the processes a reap wrapper has reaped so far (its log: one
    "pid<TAB>seconds" line each), and how many."""
    total, n = 0.0, 0
    if not path:
        return total, n
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


def server_pids(pid, exclude=()):
    return [p for p in process_tree(pid) if p not in exclude]


def tree_cpu(pid, exclude=(), reaped=None):
    """(precise seconds, tick-based seconds, live threads) of the server's process tree
    (without the pids in exclude), with reaped children and a reap wrapper's log."""
    precise = ticks = 0.0
    nthreads = 0
    for p in server_pids(pid, exclude):
        try:
            f = stat_fields(p)
        except OSError:
            continue
        own_t = (int(f[11]) + int(f[12])) / CLK_TCK
        kids_t = (int(f[13]) + int(f[14])) / CLK_TCK
        own = sched_runtime_s(p)
        precise += (own if own is not None else own_t) + kids_t
        ticks += own_t + kids_t
        try:
            nthreads += len(os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    r, _ = reaped_s(reaped)
    return precise + r, ticks + r, nthreads


def settle(pid, exclude=(), want=1, limit=3.0):
    """Waits until the server tree (minus exclude) is down to `want` processes: the
    session processes of the last run have exited and were reaped. False on timeout."""
    deadline = time.monotonic() + limit
    while True:
        if len(server_pids(pid, exclude)) <= want:
            time.sleep(0.05)  # a reap wrapper writes its line right after wait4
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


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
    """A kB figure of /proc/PID/status (VmRSS, VmHWM...), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree_rss_kib(pid):
    return sum(vm_kib(p) or 0 for p in process_tree(pid))


def pin_to_cpu(cpu):
    """Runs this process on one CPU (the client's), when given and allowed."""
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- results file

def emit(results, server, case, metric, value):
    """One "server<TAB>case<TAB>metric<TAB>value" line."""
    with open(results, "a") as f:
        f.write(f"{server}\t{case}\t{metric}\t{value}\n")


def emit_all(results, server, case, r):
    for k, v in r.items():
        emit(results, server, case, k, v)


def read_results(path):
    """{server: {case: {metric: value}}}, values as floats where they parse."""
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


# ---------------------------------------------------------------- one measured run

def measured_run(a, before=None, after=None):
    """Runs a load's client command (a.cmd, already wrapped in taskset) under a.timeout,
    measuring the server tree's CPU (a.pid without a.exclude, a.reaped) and the CPUs'
    other load (a.cpus). before/after: called around the run (settling the server tree).
    Returns (client output, the figures every load has, returncode). The output goes to
    a.log too. Kills only the child it started."""
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    exclude = {int(x) for x in getattr(a, "exclude", "").split(",") if x}
    reaped = getattr(a, "reaped", None)
    cpus = {int(x) for x in a.cpus.split(",") if x != ""}
    r = {}
    if before:
        before(r)
    st0 = cpu_stat(cpus)
    cpu0, tick0, thr0 = tree_cpu(a.pid, exclude, reaped)
    t0 = time.monotonic()
    r["start_epoch"] = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        r["timed_out"] = 1
    wall = time.monotonic() - t0
    # communicate() reaped the child; this helper starts no other, so RUSAGE_CHILDREN
    # is the client's own CPU
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if after:
        after(r)
    cpu1, tick1, thr1 = tree_cpu(a.pid, exclude, reaped)
    st1 = cpu_stat(cpus)
    out = out.decode("utf-8", "replace")
    with open(a.log, "a") if a.log else open(os.devnull, "w") as lf:
        lf.write(f"=== {a.server} {a.case}: {' '.join(cmd)}\n{out}\n")
    r["server_cpu_s"] = cpu1 - cpu0
    r["server_cpu_ticks_s"] = tick1 - tick0
    if thr1 != thr0:
        r["threads_changed"] = 1
    r["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    r["wall_s"] = wall
    r["client_cpu_pct"] = 100.0 * r["client_cpu_s"] / wall if wall > 0 else 0.0
    # CPU time on the bench's CPUs used by anything but the server and the client (other
    # programs on the machine; some of our kernel work too), and time stolen by the
    # hypervisor, in % of one CPU over the run
    other = (st1[0] - st0[0]) / CLK_TCK - r["server_cpu_s"] - r["client_cpu_s"]
    r["other_cpu_pct"] = max(0.0, 100.0 * other / wall) if wall > 0 else 0.0
    r["steal_pct"] = 100.0 * (st1[1] - st0[1]) / CLK_TCK / wall if wall > 0 else 0.0
    if p.returncode not in (0, None) and not r.get("timed_out"):
        r["exit"] = p.returncode
    return out, r, p.returncode


def load_note(r):
    """The end of a run's progress line: the other load (and steal) it saw."""
    msg = f", other load {r['other_cpu_pct']:.0f}%"
    if r["steal_pct"] >= 1:
        msg += f", steal {r['steal_pct']:.0f}%"
    return msg


def report_failure(a, r, returncode, out, extra="", lines=5):
    """Marks a run that produced no figure and says why on stderr."""
    r["failed"] = 1
    tail = "\n    ".join(out.strip().splitlines()[-lines:])
    print(f"  {a.server} {a.case}: FAILED (exit {returncode}"
          f"{', timed out' if r.get('timed_out') else ''}{extra}):\n    {tail}", file=sys.stderr)


def server_gone(a):
    if os.path.exists(f"/proc/{a.pid}"):
        return False
    print(f"  {a.server} {a.case}: server pid {a.pid} is gone", file=sys.stderr)
    return True


def cli(doc, commands):
    """A helper's command line: commands maps a subcommand to (handler, add_arguments);
    parses the arguments, runs the one named, exits with its status."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    for name, (_, add) in commands.items():
        add(sub.add_parser(name))
    a = ap.parse_args()
    sys.exit(commands[a.sub][0](a) or 0)


def add_client_args(p):
    """The options of a subcommand that measures as a client of a running server."""
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-cpu", type=int)


def add_load_args(p, kinds):
    """The options every `load` subcommand takes."""
    p.add_argument("--results", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--kind", choices=kinds, required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log")
    p.add_argument("--cpus", default="0,1", help="CPUs the server and the client run on")
    p.add_argument("cmd", nargs="...")


def add_report_args(p):
    p.add_argument("--results", required=True)
    p.add_argument("--json")
    p.add_argument("--other", type=float, default=10,
                   help="%% of a CPU of other load that marks a run disturbed")


# ---------------------------------------------------------------- the report

def fmt(v, kind):
    if v is None:
        return "-"
    return {"int": f"{v:,.0f}", "f1": f"{v:.1f}", "f2": f"{v:.2f}", "f3": f"{v:.3f}"}[kind]


def print_table(title, rows, order, get, label, cw):
    """rows: (title, case, metric, format, ...); one column per server in order; rows that
    no server measured are left out. Returns the width of the title column."""
    w0 = max(len(r[0]) for r in rows) + 2
    print()
    print(title)
    print("".ljust(w0) + "".join(label.get(s, s).rjust(cw) for s in order))
    for row in rows:
        vals = [get(s, row[1], row[2]) for s in order]
        if any(v is not None for v in vals):
            print(row[0].ljust(w0) + "".join(fmt(v, row[3]).rjust(cw) for v in vals))
    return w0


def median_run(runs, key):
    """The run that stands for a case: the median one by key (the lower of the two
    middle ones for an even count), whole, so its CPU figures go with it. Never the
    best: on a shared machine the best round is luck."""
    good = sorted((v for v in runs if isinstance(v.get(key), (int, float)) and not v.get("failed")),
                  key=lambda v: v[key])
    return good[(len(good) - 1) // 2] if good else None


def ratio_cell(mine, peer, target, higher):
    """loopkit / peer, with the target in brackets and '*' where it is not met."""
    if mine is None or not peer:
        return "-"
    r = mine / peer
    if target is None:
        return f"{r:.2f}"
    met = r >= target if higher else r <= target
    return f"{r:.2f}{' ' if met else '*'}[{target:.1f}]"


RATIO_HEADING = ("Ratios loopkit / peer  (target in brackets: >= for rates, <= for CPU;"
                 " '*' = target not met; informational, never a failure)")


def disturbed_note(order, cases, get, label, other, who):
    """The runs with at least `other` % of a CPU of other load (or 5% steal)."""
    busy = []
    for s in order:
        for c in cases:
            o, st = get(s, c, "other_cpu_pct") or 0, get(s, c, "steal_pct") or 0
            if o >= other or st >= 5:
                busy.append(f"{label.get(s, s)} {c} ({o:.0f}%{f', steal {st:.0f}%' if st >= 5 else ''})")
    if busy:
        print(f"Other work on the bench CPUs (>= {other:.0f}% of a CPU besides server and {who})"
              " during: " + ", ".join(busy) + ".\n  Those figures are disturbed; rerun on a quiet machine.")


def write_json(res, path):
    if path:
        with open(path, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        print(f"\nJSON: {path}")
