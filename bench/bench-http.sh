#!/bin/bash
# bench/bench-http.sh - loopkit bench http against wrk, both loading the same lighttpd
# (pinned to CPU 1) with the same threads and connections (client pinned to CPU 0),
# same run.  Prints requests/s, p50/p90/p99, client CPU per request and the ratios; not
# pass/fail.  Knobs: SECS (default 5), THREADS (1), CONNS (64), LOOPKIT.
set -euo pipefail
# shellcheck source=bench/peers.sh
. "$(dirname "$0")/peers.sh"
need wrk lighttpd
SECS=${SECS:-5}
THREADS=${THREADS:-1}
CONNS=${CONNS:-64}
DOCROOT=$TMP/www
SERVER_CPU=1
mkdir "$DOCROOT"
head -c 1024 /dev/zero | tr '\0' 'k' >"$DOCROOT/1k"
start_lighttpd
URL="http://127.0.0.1:$SERVER_PORT/1k"

# client_cpu CMD...: runs CMD, prints its output, then "CPU <user+sys seconds>" of CMD
client_cpu() {
	(
		"$@"
		times >"$TMP/times" # a builtin in this shell: its second line is the children's CPU
		tail -n 1 "$TMP/times" | awk '{ split($1,u,"m"); split($2,s,"m"); printf "CPU %.3f\n", u[1]*60+u[2]+s[1]*60+s[2] }'
	)
}

echo "http: GET 1 KiB from lighttpd (CPU 1), client on CPU 0, -t $THREADS -c $CONNS, ${SECS} s each"
# warm-up
timeout 10 taskset -c 0 wrk -t1 -c8 -d1s "$URL" >/dev/null
wo=$(client_cpu timeout $((SECS + 20)) taskset -c 0 wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$URL")
lo=$(client_cpu timeout $((SECS + 20)) taskset -c 0 "$LOOPKIT" bench http "$URL" -t "$THREADS" -C "$CONNS" -d "$SECS" --json)
python3 - "$wo" "$lo" <<'PY'
import json, re, sys
wo, lo = sys.argv[1], sys.argv[2]

def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

w_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wo).group(1))
w_n = int(re.search(r"(\d+) requests in", wo).group(1))
w_cpu = float(re.search(r"CPU ([\d.]+)", wo).group(1))
w_p = {p: us(*re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", wo, re.M).groups()) for p in ("50", "90", "99")}
doc = json.loads(lo[:lo.rindex("}") + 1])
l_cpu = float(re.search(r"CPU ([\d.]+)", lo[lo.rindex("}"):]).group(1))
l_rps = doc["requests_per_s"]
l_p = {"50": doc["latency_us"]["p50"], "90": doc["latency_us"]["p90"], "99": doc["latency_us"]["p99"]}
errs = sum(doc["errors"].values())
print(f"  {'':10s} {'req/s':>10s} {'p50 us':>9s} {'p90 us':>9s} {'p99 us':>9s} {'client CPU us/req':>18s}")
print(f"  {'wrk':10s} {w_rps:10.0f} {w_p['50']:9.1f} {w_p['90']:9.1f} {w_p['99']:9.1f} {1e6 * w_cpu / w_n:18.2f}")
print(f"  {'loopkit':10s} {l_rps:10.0f} {l_p['50']:9.1f} {l_p['90']:9.1f} {l_p['99']:9.1f} "
      f"{1e6 * l_cpu / max(doc['requests'], 1):18.2f}   (errors {errs})")
print(f"  ratio loopkit/wrk: req/s {l_rps / w_rps:.2f}x (target >= 1.1), "
      + ", ".join(f"p{p} {l_p[p] / w_p[p]:.2f}x" for p in ("50", "90", "99"))
      + " (target within 10%), client CPU per request "
      + f"{(l_cpu / max(doc['requests'], 1)) / (w_cpu / w_n):.2f}x")
PY
