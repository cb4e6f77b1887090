#!/bin/bash
# bench/bench-tcp.sh - loopkit bench tcp against iperf3 with the same streams, same run.
# iperf3's server is pinned to CPU 1 and its client to CPU 0; loopkit's threads run on
# CPUs 0 and 1.  Prints ratios, not pass/fail.  Knobs: SECS (default 5), STREAMS ("1 2").
set -euo pipefail
# shellcheck source=bench/peers.sh
. "$(dirname "$0")/peers.sh"
need iperf3
SECS=${SECS:-5}
STREAMS=${STREAMS:-"1 2"}
port=$(free_port)

echo "tcp: bulk throughput over 127.0.0.1, ${SECS} s per run"
for p in $STREAMS; do
	taskset -c 1 iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	SERVER_PID=$!
	STARTED_PIDS+=("$SERVER_PID")
	sleep 0.5
	ip=$(timeout $((SECS + 20)) taskset -c 0 iperf3 -c 127.0.0.1 -p "$port" -t "$SECS" -P "$p" -J |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)')
	wait "$SERVER_PID" 2>/dev/null || true # iperf3 -s -1 ends after one test
	forget_pid "$SERVER_PID"
	SERVER_PID=
	lk=$(timeout $((SECS + 20)) taskset -c 0,1 "$LOOPKIT" bench tcp -d "$SECS" -P "$p" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["gbit_per_s"])')
	python3 - "$p" "$lk" "$ip" <<'PY'
import sys
p, lk, ip = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"  -P {p}: loopkit {lk:6.2f} Gbit/s   iperf3 {ip:6.2f} Gbit/s   ratio {lk / ip:.2f}x (target >= 0.95)")
PY
done
