#!/usr/bin/env bash
# bench/watch.sh: `loopkit watch` against Prometheus's blackbox_exporter, in one run:
#   1. 1,000 HTTP targets (one nginx, 1,000 paths) probed every second for BENCH_SECS:
#      the watcher's CPU (% of a core, CPU per probe) and RSS;
#   2. blackbox_exporter probing the same 1,000 targets at the same rate, driven by a
#      scripted /probe loop (1,000 requests a second on keep-alive connections, spread
#      evenly): its CPU per probe; the ratio loopkit / blackbox is printed;
#   3. probe latency of one target, loopkit watch and blackbox_exporter against a direct
#      `curl -w %{time_total}`: the overhead of each, medians.
# The tool under test is pinned with taskset to $BENCH_CPU, nginx and the driver to
# $BENCH_SERVER_CPU. Rounds alternate the two tools; medians of rounds are printed. Prints
# figures and ratios; never fails on timing (non-zero only when a tool is missing or the
# setup fails). Every process is started here and stopped by pid.
#
# Environment (all optional):
#   BENCH_SECS=60        seconds each tool probes the 1,000 targets in a round
#   BENCH_ROUNDS=3       rounds (each: loopkit, then blackbox_exporter)
#   BENCH_TARGETS=1000   targets (paths on the one nginx)
#   BENCH_LAT_RUNS=300   samples per tool for the latency comparison
#   BENCH_CPU=0 BENCH_SERVER_CPU=1   taskset CPUs
#   LOOPKIT=PATH         the binary (default: ./loopkit at the repository root)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
export LC_ALL=C
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}
SECS=${BENCH_SECS:-60}
ROUNDS=${BENCH_ROUNDS:-3}
TARGETS=${BENCH_TARGETS:-1000}
LAT_RUNS=${BENCH_LAT_RUNS:-300}
CPU=${BENCH_CPU:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-1}

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

missing=()
for t in taskset nginx curl prometheus-blackbox-exporter; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ -x "$LOOPKIT" ] || missing+=("loopkit (run make)")
if [ ${#missing[@]} -gt 0 ]; then
	warn "missing: ${missing[*]} (scripts/deps installs them)"
	exit 1
fi
for v in "$SECS" "$ROUNDS" "$TARGETS" "$LAT_RUNS" "$CPU" "$SERVER_CPU"; do
	case $v in '' | *[!0-9]*) warn "BENCH_* settings are whole numbers"; exit 1 ;; esac
done
[ "$(nproc)" -lt 2 ] && { warn "one CPU: the tool and nginx share it"; SERVER_CPU=$CPU; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/loopkit-bench-watch.XXXXXX") || exit 1
chmod 755 "$TMP" # nginx workers (www-data) read the site
cleanup() {
	trap - EXIT INT TERM
	stop_all
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One nginx, one small file per target.
DOCROOT=$TMP/site
mkdir -p "$DOCROOT"
head -c 1024 /dev/zero | tr '\0' x >"$DOCROOT/1k"
for i in $(seq 0 $((TARGETS - 1))); do printf 'ok %d\n' "$i" >"$DOCROOT/p$i"; done
start_nginx default || { warn "nginx did not start"; exit 1; }
NGINX_PID=$SERVER_PID
NGINX_PORT=$SERVER_PORT
SERVER_PID=
SERVER_PORT=

timeout $((ROUNDS * (2 * SECS + 60) + 300)) "$PY" - "$LOOPKIT" "$NGINX_PORT" "$SECS" "$ROUNDS" "$TARGETS" \
	"$LAT_RUNS" "$CPU" "$SERVER_CPU" "$TMP" <<'PYEOF'
import asyncio, json, os, re, signal, statistics, subprocess, sys, time, urllib.request

loopkit, port, secs, rounds, ntargets, lat_runs, cpu, server_cpu, tmp = sys.argv[1:]
port, secs, rounds, ntargets, lat_runs = int(port), int(secs), int(rounds), int(ntargets), int(lat_runs)
os.sched_setaffinity(0, {int(server_cpu)})  # the driver stays off the measured CPU
signal.signal(signal.SIGTERM, lambda *a: sys.exit("bench/watch.sh: stopped"))
TCK = os.sysconf("SC_CLK_TCK")
WARMUP = 5  # seconds before the measured window
procs = []


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def free_ports(n):
    out = subprocess.run([loopkit, "port", "--count", str(n), "--lease", "1800"], capture_output=True,
                         text=True, check=True).stdout
    return [int(x) for x in out.split()]


def spawn(cmd, name):
    log = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen(["taskset", "-c", cpu] + cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def first_line(name, p):
    """The watcher's first stdout line (its page's URL); the rest (one line per change)
    goes on into the log file, which nothing has to read."""
    for _ in range(200):
        with open(os.path.join(tmp, name + ".log")) as f:
            line = f.readline()
        if line.endswith("\n"):
            assert line.startswith("http://"), f"loopkit watch did not start: {line!r}"
            return line.strip()
        assert p.poll() is None, "loopkit watch exited at start"
        time.sleep(0.05)
    raise SystemExit("loopkit watch printed no URL")


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def probes_total(url):
    return sum(float(m) for m in re.findall(r"^loopkit_watch_probes_total\{[^}]*\} (\S+)$", get(url + "metrics"),
                                              re.M))


urls = [f"http://127.0.0.1:{port}/p{i}" for i in range(ntargets)]
cfg = os.path.join(tmp, "targets.json")
with open(cfg, "w") as f:
    json.dump({"targets": [{"url": u} for u in urls]}, f)


def run_loopkit(rnd):
    db = os.path.join(tmp, f"watch{rnd}.db")
    p = spawn([loopkit, "watch", "--config", cfg, "-i", "1s", "--port", "0", "--db", db], f"watch{rnd}")
    url = first_line(f"watch{rnd}", p)
    time.sleep(WARMUP)
    c0, n0, t0 = cpu_s(p.pid), probes_total(url), time.monotonic()
    time.sleep(secs)
    c1, n1, t1 = cpu_s(p.pid), probes_total(url), time.monotonic()
    status = json.loads(get(url + "api/status"))
    rss, hwm = kib(p.pid, "VmRSS"), kib(p.pid, "VmHWM")
    stop(p)
    return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "probes_s": (n1 - n0) / (t1 - t0),
            "us_per_probe": 1e6 * (c1 - c0) / max(n1 - n0, 1), "rss_mib": rss / 1024, "hwm_mib": hwm / 1024,
            "up": status["up"]}


BB_CONF = """modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
"""


async def drive(bb_port, seconds, stats):
    """/probe for every target once a second, evenly spread, on keep-alive connections."""
    queue = asyncio.Queue()

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", bb_port)
        while True:
            target = await queue.get()
            if target is None:
                writer.close()
                return
            writer.write(f"GET /probe?module=http_2xx&target={target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            if m:
                body = await reader.readexactly(int(m.group(1)))
            else:  # chunked
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    chunk = await reader.readexactly(size + 2)
                    if not size:
                        break
                    body += chunk[:-2]
            stats["ok" if b"\nprobe_success 1" in body else "failed"] += 1

    workers = [asyncio.create_task(worker()) for _ in range(64)]
    start = time.monotonic()
    slots = 100  # every 10 ms, the targets due in it
    per = len(urls) / slots
    for s in range(seconds):
        for k in range(slots):
            due = start + s + k / slots
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stats["late_max"] = max(stats["late_max"], -delay)
            for u in urls[int(k * per):int((k + 1) * per)]:
                queue.put_nowait(u)
    while not queue.empty():
        await asyncio.sleep(0.01)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


def start_blackbox(name):
    """blackbox_exporter on a free port, pinned, once it answers: (process, port)."""
    bb_port, = free_ports(1)
    conf = os.path.join(tmp, "blackbox.yml")
    with open(conf, "w") as f:
        f.write(BB_CONF)
    p = spawn(["prometheus-blackbox-exporter", f"--config.file={conf}",
               f"--web.listen-address=127.0.0.1:{bb_port}"], name)
    for _ in range(100):
        try:
            get(f"http://127.0.0.1:{bb_port}/-/healthy", 1)
            return p, bb_port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("blackbox_exporter did not answer")


def run_blackbox(rnd):
    p, bb_port = start_blackbox(f"blackbox{rnd}")
    warm = {"ok": 0, "failed": 0, "late_max": 0}
    asyncio.run(drive(bb_port, WARMUP, warm))
    stats = {"ok": 0, "failed": 0, "late_max": 0}
    c0, t0 = cpu_s(p.pid), time.monotonic()
    asyncio.run(drive(bb_port, secs, stats))
    c1, t1 = cpu_s(p.pid), time.monotonic()
    rss, hwm = kib(p.pid, "VmRSS"), kib(p.pid, "VmHWM")
    stop(p)
    n = stats["ok"] + stats["failed"]
    return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "probes_s": n / (t1 - t0),
            "us_per_probe": 1e6 * (c1 - c0) / max(n, 1), "rss_mib": rss / 1024, "hwm_mib": hwm / 1024,
            "up": stats["ok"] * ntargets // max(n, 1), "failed": stats["failed"], "late_max": stats["late_max"]}


def latency():
    """Medians (ms) of one target's probe: curl -w, loopkit watch, blackbox_exporter."""
    target = urls[0]
    curl = []
    for _ in range(lat_runs):
        out = subprocess.run(["taskset", "-c", cpu, "curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", target],
                             capture_output=True, text=True).stdout
        curl.append(float(out) * 1000)
    p = spawn([loopkit, "watch", target, "-i", "100ms", "--port", "0", "--db", os.path.join(tmp, "lat.db")],
              "watch-lat")
    url = first_line("watch-lat", p)
    time.sleep(min(lat_runs, 256) * 0.1 + 1)  # the last hour's p50 is of its last 256 probes
    row = json.loads(get(url + "api/status"))["targets"][0]
    stop(p)
    lk = row["latency_1h"]["p50_ms"]
    q, bb_port = start_blackbox("blackbox-lat")
    bb = []
    for _ in range(lat_runs):
        body = get(f"http://127.0.0.1:{bb_port}/probe?module=http_2xx&target={target}")
        bb.append(float(re.search(r"^probe_duration_seconds (\S+)$", body, re.M).group(1)) * 1000)
    stop(q)
    return statistics.median(curl), lk, statistics.median(bb)


try:
    lk_runs, bb_runs = [], []
    for r in range(rounds):
        lk_runs.append(run_loopkit(r))
        bb_runs.append(run_blackbox(r))
        print(f"round {r + 1}: loopkit {lk_runs[-1]['cpu_pct']:.2f}% {lk_runs[-1]['us_per_probe']:.1f} us/probe; "
              f"blackbox {bb_runs[-1]['cpu_pct']:.2f}% {bb_runs[-1]['us_per_probe']:.1f} us/probe", flush=True)
    curl_ms, lk_ms, bb_ms = latency()
finally:
    for p in procs:
        stop(p)


def med(runs, k):
    return statistics.median(r[k] for r in runs)


print(f"\nloopkit watch vs blackbox_exporter: {ntargets} HTTP targets (one nginx, {ntargets} paths) every 1 s, "
      f"{secs} s measured after {WARMUP} s, {rounds} round(s), medians; tool on CPU {cpu}, nginx and the "
      f"/probe driver on CPU {server_cpu}")
for name, runs in (("loopkit watch", lk_runs), ("blackbox_exporter", bb_runs)):
    print(f"  {name:18} CPU {med(runs, 'cpu_pct'):6.2f}% of a core  {med(runs, 'probes_s'):7.1f} probes/s  "
          f"{med(runs, 'us_per_probe'):7.1f} us CPU/probe  RSS {med(runs, 'rss_mib'):6.1f} MiB "
          f"(peak {med(runs, 'hwm_mib'):.1f})  up {int(med(runs, 'up'))}/{ntargets}")
bb_failed = sum(r["failed"] for r in bb_runs)
if bb_failed:
    print(f"  blackbox_exporter: {bb_failed} probes failed")
late = max(r["late_max"] for r in bb_runs)
if late > 0.1:
    print(f"  note: the /probe driver fell up to {late:.2f} s behind its schedule")
ratio = med(lk_runs, "us_per_probe") / med(bb_runs, "us_per_probe")
print(f"  CPU per probe, loopkit / blackbox_exporter: {ratio:.3f} (goal <= 0.5)")
print(f"  loopkit watch: CPU {med(lk_runs, 'cpu_pct'):.2f}% (goal <= 5%), RSS {med(lk_runs, 'rss_mib'):.1f} MiB "
      f"(goal <= 32 MiB)")
print(f"\nprobe latency of one target, medians of {lat_runs} (loopkit: p50 of its last {min(lat_runs, 256)} probes):")
print(f"  curl -w %{{time_total}} {curl_ms:.3f} ms")
print(f"  loopkit watch          {lk_ms:.3f} ms  overhead {lk_ms - curl_ms:+.3f} ms (goal <= 0.2 ms)")
print(f"  blackbox_exporter      {bb_ms:.3f} ms  overhead {bb_ms - curl_ms:+.3f} ms")
PYEOF
rc=$?
stop_pid "$NGINX_PID"
exit $rc
