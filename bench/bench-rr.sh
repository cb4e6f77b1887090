#!/bin/bash
# bench/bench-rr.sh - loopkit bench rr against sockperf ping-pong (TCP, 64-byte
# messages), same run: across CPUs (sockperf server on CPU 1, client on CPU 0;
# loopkit's two threads on CPUs 0,1) and on one CPU (everything on CPU 0).
# sockperf reports one-way latency = round trip / 2; loopkit's p50 is halved to match.
# Prints ratios, not pass/fail.  Knobs: SECS (default 5), LEN (default 64).
set -euo pipefail
# shellcheck source=bench/peers.sh
. "$(dirname "$0")/peers.sh"
need sockperf
SECS=${SECS:-5}
LEN=${LEN:-64}
port=$(free_port)

echo "rr: TCP ping-pong, $LEN-byte messages, ${SECS} s per run; p50 one-way (RTT/2), us"
for cfg in "across 1 0 0,1" "one-cpu 0 0 0"; do
	read -r name scpu ccpu lcpu <<<"$cfg"
	taskset -c "$scpu" sockperf sr --tcp -i 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	SERVER_PID=$!
	STARTED_PIDS+=("$SERVER_PID")
	sleep 0.5
	sp=$(timeout $((SECS + 20)) taskset -c "$ccpu" sockperf pp --tcp -i 127.0.0.1 -p "$port" -m "$LEN" -t "$SECS" 2>&1 |
		awk '/percentile 50.000 =/ {print $NF}')
	stop_server || true # see peers.sh
	lk=$(timeout $((SECS + 20)) taskset -c "$lcpu" "$LOOPKIT" bench rr -l "$LEN" -d "$SECS" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_us"]["p50"] / 2)')
	python3 - "$name" "$lk" "$sp" <<'PY'
import sys
name, lk, sp = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"  {name:8s} loopkit p50 {lk:7.2f} us   sockperf p50 {sp:7.2f} us   ratio {lk / sp:.2f}x"
      f" (target within 5%: 0.95-1.05, lower is better)")
PY
done
