#!/usr/bin/env bash
# bench/scan.sh: `loopkit scan` against nmap on 127.0.0.1, in one run, with 20 real listeners
# (redis-server, memcached, nginx, python http.server, loopkit serve, vsftpd as root):
#   1. all 65,535 TCP ports: loopkit scan --no-service vs nmap -sT (and -sS as root), the
#      same open set, median of rounds, ratio printed;
#   2. 20 scans in one process (--rounds 20): descriptors and RSS of the first and last;
#   3. service detection of the 20 listeners: loopkit scan vs nmap -sT -sV, medians, ratio.
# The scanners are pinned with taskset to the same CPUs, $BENCH_CPU (two: loopkit scan runs a
# thread per CPU; nmap runs one, and is also timed against `loopkit scan -t 1`); the services
# run where the kernel puts them. Prints figures and ratios; never fails on timing (non-zero only when a tool is
# missing or the setup fails). Every process is started here and stopped by pid.
#
# Environment (all optional):
#   BENCH_RUNS=7       rounds of the full-range scan per tool; the median counts
#   BENCH_SV_RUNS=3    rounds of service detection per tool
#   BENCH_CPU=0,1      taskset CPU list for the scanners (0 when the machine has one CPU)
#   LOOPKIT=PATH       the binary (default: ./loopkit at the repository root)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}
RUNS=${BENCH_RUNS:-7}
SV_RUNS=${BENCH_SV_RUNS:-3}
CPU=${BENCH_CPU:-$( [ "$(nproc)" -ge 2 ] && echo 0,1 || echo 0)}
export LC_ALL=C

missing=()
for t in nmap redis-server memcached nginx taskset; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ -x "$LOOPKIT" ] || missing+=("loopkit (run make)")
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench/scan.sh: missing: ${missing[*]} (scripts/deps installs them)" >&2
	exit 1
fi
for v in "$RUNS" "$SV_RUNS"; do
	case $v in '' | *[!0-9]*) echo "BENCH_RUNS and BENCH_SV_RUNS are numbers" >&2; exit 1 ;; esac
done
case $CPU in '' | *[!0-9,]*) echo "BENCH_CPU is a CPU list such as 0,1" >&2; exit 1 ;; esac

exec timeout 1500 "$PY" - "$RUNS" "$SV_RUNS" "$CPU" "$LOOPKIT" <<'PYEOF'
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET

runs, sv_runs, cpu, loopkit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
root = os.getuid() == 0
signal.signal(signal.SIGTERM, lambda *a: sys.exit("bench/scan.sh: stopped"))
tmp = tempfile.mkdtemp(prefix="lk-bench-scan-")
procs = []


def free_ports(n):
    out = subprocess.run([loopkit, "port", "--count", str(n), "--lease", "1800"], capture_output=True,
                         text=True, check=True).stdout
    return [int(x) for x in out.split()]


def spawn(cmd, **kw):
    log = open(os.path.join(tmp, f"svc{len(procs)}.log"), "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, **kw)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


kinds = ["redis"] * 3 + ["memcached"] * 3 + ["nginx"] * 2 + ["pyhttp"] * 4 + ["loopkit"] * 4
kinds += ["vsftpd"] * 2 if root and shutil.which("vsftpd") else ["pyhttp"] * 2
kinds += ["loopkit"] * 2
ports = free_ports(len(kinds))
www = os.path.join(tmp, "www")
os.makedirs(www)
open(os.path.join(www, "index.html"), "w").write("<p>bench</p>\n")
try:
    nginx_ports = [p for k, p in zip(kinds, ports) if k == "nginx"]
    for i, (kind, port) in enumerate(zip(kinds, ports)):
        if kind == "redis":
            d = os.path.join(tmp, f"redis{i}")
            os.mkdir(d)
            spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d,
                   "--appendonly", "no", "--daemonize", "no"])
        elif kind == "memcached":
            spawn(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"] + (["-u", "nobody"] if root else []))
        elif kind == "pyhttp":
            spawn([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", www])
        elif kind == "loopkit":
            spawn([loopkit, "serve", www, "--port", str(port), "--threads", "1", "--log", "json"])
        elif kind == "vsftpd":
            d = os.path.join(tmp, f"vsftpd{i}")
            os.makedirs(os.path.join(d, "ftp"))
            os.makedirs(os.path.join(d, "empty"))
            os.chmod(tmp, 0o755)
            conf = os.path.join(d, "vsftpd.conf")
            open(conf, "w").write(f"listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n"
                                  f"anonymous_enable=YES\nlocal_enable=NO\nanon_root={d}/ftp\nbackground=NO\n"
                                  f"seccomp_sandbox=NO\nsecure_chroot_dir={d}/empty\nxferlog_enable=NO\n")
            spawn(["vsftpd", conf])
    if nginx_ports:
        d = os.path.join(tmp, "nginx")
        os.mkdir(d)
        servers = "".join(f"server {{ listen 127.0.0.1:{p}; root {www}; }}\n" for p in nginx_ports)
        conf = os.path.join(d, "nginx.conf")
        open(conf, "w").write(f"daemon off; worker_processes 1; error_log {d}/error.log; pid {d}/nginx.pid;\n"
                              f"events {{ worker_connections 64; }}\nhttp {{ access_log off;\n"
                              f"client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;\n"
                              f"uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n{servers}}}\n")
        spawn(["nginx", "-c", conf, "-p", d])
    deadline = time.monotonic() + 20
    for port in ports:
        while not listening(port):
            if time.monotonic() > deadline:
                sys.exit(f"bench/scan.sh: nothing listens on {port}; logs in {tmp}")
            time.sleep(0.05)
    plist = ",".join(map(str, ports))
    pin = ["taskset", "-c", cpu]
    print(f"{len(ports)} listeners on 127.0.0.1 ({', '.join(sorted(set(kinds)))}); scanners pinned to CPUs {cpu}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")

    def timed(cmd):
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"bench/scan.sh: {' '.join(cmd)} failed: {p.stderr[-500:]}")
        return dt, p.stdout

    def xml_open(text):
        return {int(p.get("portid")) for p in ET.fromstring(text).iter("port")
                if p.find("state").get("state") == "open"}

    # 1. all 65,535 ports
    tools = [("loopkit scan", pin + [loopkit, "scan", "--no-service", "--nmap-xml", "-"]),
             ("loopkit scan -t 1", pin + [loopkit, "scan", "-t", "1", "--no-service", "--nmap-xml", "-"]),
             ("nmap -sT", pin + ["nmap", "-sT", "-p-", "-n", "-Pn", "-T4", "127.0.0.1", "-oX", "-"])]
    if root:
        tools.append(("nmap -sS", pin + ["nmap", "-sS", "-p-", "-n", "-Pn", "-T4", "127.0.0.1", "-oX", "-"]))
    times = {name: [] for name, _ in tools}
    opens = {name: None for name, _ in tools}
    for r in range(runs):
        for name, cmd in tools:
            dt, out = timed(cmd)
            times[name].append(dt)
            found = xml_open(out)
            opens[name] = found if opens[name] is None else opens[name] & found
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\n1. all 65,535 TCP ports of 127.0.0.1, median of {runs} (wall, process start to exit)")
    for name, _ in tools:
        print(f"   {name:17} {med[name]:7.3f} s   (min {min(times[name]):.3f}, max {max(times[name]):.3f})")
    for name, _ in tools[2:]:
        print(f"   loopkit scan is {med[name] / med['loopkit scan']:.1f}x faster than {name}"
              f" (-t 1: {med[name] / med['loopkit scan -t 1']:.1f}x)")
    mine = set(ports)
    for name, _ in tools:
        miss = mine - opens[name]
        print(f"   {name:17} found all 20 listeners in every round: {'yes' if not miss else 'no, missed ' + str(sorted(miss))}")
    a, b = opens["loopkit scan"], opens["nmap -sT"]
    print(f"   open in every round: loopkit {len(a)}, nmap -sT {len(b)}, same set: {a == b}"
          + ("" if a == b else f" (differ: {sorted(a ^ b)}; other programs on this machine open and close listeners)"))

    # 2. 20 scans in one process
    _, out = timed(pin + [loopkit, "scan", "--no-service", "--rounds", "20", "--json"])
    rounds = json.loads(out)["rounds"]
    secs = sorted(r["seconds"] for r in rounds)
    print(f"\n2. 20 scans in one process (--rounds 20): median {statistics.median(secs):.3f} s a scan; "
          f"descriptors {rounds[0]['fds']} -> {rounds[-1]['fds']}, RSS {rounds[0]['rss_kb']} kB after the first, "
          f"{rounds[1]['rss_kb']} after the second, {rounds[-1]['rss_kb']} after the 20th")

    # 3. service detection of the 20 listeners
    sv = [("loopkit scan", pin + [loopkit, "scan", "-p", plist, "--nmap-xml", "-"]),
          ("nmap -sT -sV", pin + ["nmap", "-sT", "-sV", "-p", plist, "-n", "-Pn", "127.0.0.1", "-oX", "-"])]
    svt = {name: [] for name, _ in sv}
    names = {}
    for r in range(sv_runs):
        for name, cmd in sv:
            dt, out = timed(cmd)
            svt[name].append(dt)
            names[name] = {int(p.get("portid")): (p.find("service").get("name") if p.find("service") is not None else "")
                           for p in ET.fromstring(out).iter("port")}
    smed = {name: statistics.median(v) for name, v in svt.items()}
    print(f"\n3. service detection of the {len(ports)} listeners, median of {sv_runs}")
    for name, _ in sv:
        print(f"   {name:14} {smed[name]:7.3f} s")
    print(f"   loopkit scan takes {smed['loopkit scan'] / smed['nmap -sT -sV']:.3f}x the time of nmap -sT -sV "
          f"({smed['nmap -sT -sV'] / smed['loopkit scan']:.1f}x faster)")
    agree = sum(names["loopkit scan"][p] == names["nmap -sT -sV"].get(p) for p in ports)
    print(f"   service names agree on {agree} of {len(ports)} ports:")
    for kind, port in zip(kinds, ports):
        print(f"     {port:6} {kind:10} loopkit {names['loopkit scan'][port]:10} nmap {names['nmap -sT -sV'].get(port, '?')}")
finally:
    stop_all()
PYEOF
