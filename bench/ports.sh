#!/usr/bin/env bash
# bench/ports.sh: `loopkit ports --all` against `ss -tanp` and `lsof -nP -iTCP`, timed in
# the same run while 2,000 loopback TCP connections are open. Prints figures and ratios;
# never fails on timing (non-zero only when a tool is missing or the setup fails).
#
# Environment (all optional):
#   BENCH_CONNS=2000   loopback connections held open (each is two sockets), at most 20000
#   BENCH_RUNS=15      timed runs per tool; the median counts
#   BENCH_CPU=0        taskset CPU for the tools under test
#   LOOPKIT=PATH       the binary (default: ./loopkit at the repository root)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}
CONNS=${BENCH_CONNS:-2000}
RUNS=${BENCH_RUNS:-15}
CPU=${BENCH_CPU:-0}
export LC_ALL=C

missing=()
for t in ss lsof taskset; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ -x "$LOOPKIT" ] || missing+=("loopkit (run make)")
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench/ports.sh: missing: ${missing[*]} (Debian: apt-get install iproute2 lsof util-linux)" >&2
	exit 1
fi
case $CONNS in '' | *[!0-9]*) echo "BENCH_CONNS must be a number" >&2; exit 1 ;; esac
[ "$CONNS" -le 20000 ] || { echo "BENCH_CONNS is at most 20000" >&2; exit 1; }

# One Python process opens the connections (127.0.0.1 only), then times the three tools
# with them open, and closes everything when it is done or after 300 s at the latest.
exec timeout 300 "$PY" - "$CONNS" "$RUNS" "$CPU" "$LOOPKIT" <<'PYEOF'
import os, resource, socket, statistics, subprocess, sys, time

conns, runs, cpu, loopkit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = 2 * conns + 64
if soft < need:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    if min(need, hard) < need:
        sys.exit(f"bench/ports.sh: need {need} open files, the hard limit is {hard}")

lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1024)
held = []
for i in range(conns):
    c = socket.create_connection(lst.getsockname())
    a, _ = lst.accept()
    held += [c, a]

tools = [
    ("loopkit ports --all", [loopkit, "ports", "--all"]),
    ("ss -tanp", ["ss", "-tanp"]),
    ("lsof -nP -iTCP", ["lsof", "-nP", "-iTCP"]),
]

def once(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(["taskset", "-c", cpu] + cmd, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    return dt, p.stdout.count(b"\n"), p.returncode

res = {}
for name, cmd in tools:
    once(cmd)  # warm the caches (passwd, /proc dentries) for every tool alike
for r in range(runs):  # round-robin, so drift hits every tool the same
    for name, cmd in tools:
        dt, lines, rc = once(cmd)
        res.setdefault(name, []).append((dt, lines, rc))

print(f"bench/ports.sh: {conns} loopback connections ({2 * conns} sockets) open, "
      f"{runs} runs each, pinned to CPU {cpu}; median wall time")
print(f"{'command':24} {'median ms':>10} {'min ms':>8} {'lines':>7}")
med = {}
for name, _ in tools:
    ts = [x[0] for x in res[name]]
    med[name] = statistics.median(ts)
    print(f"{name:24} {med[name] * 1000:10.1f} {min(ts) * 1000:8.1f} {res[name][-1][1]:7d}"
          + ("" if res[name][-1][2] == 0 else f"  (exit {res[name][-1][2]})"))
lk = med["loopkit ports --all"]
print(f"ratio ss/loopkit:   {med['ss -tanp'] / lk:.2f}x  (above 1: loopkit is faster)")
print(f"ratio lsof/loopkit: {med['lsof -nP -iTCP'] / lk:.2f}x")
for s in held:
    s.close()
lst.close()
PYEOF
