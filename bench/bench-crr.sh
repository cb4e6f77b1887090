#!/bin/bash
# bench/bench-crr.sh - loopkit bench crr against a plain C connect/close loop
# (bench/crr-loop.c: blocking client, blocking accept thread), same run, same CPUs.
# Prints ratios, not pass/fail.  Knobs: SECS (default 5), CPUS (default 0,1), LOOPKIT.
set -euo pipefail
# shellcheck source=bench/peers.sh
. "$(dirname "$0")/peers.sh"
need cc
SECS=${SECS:-5}
CPUS=${CPUS:-0,1}
cc -O2 -pthread bench/crr-loop.c -o "$TMP/crr-loop"
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

echo "crr: connect, 1-byte request, 1-byte answer, close; ${SECS} s each, CPUs $CPUS"
lk=$(timeout $((SECS + 30)) taskset -c "$CPUS" "$LOOPKIT" bench crr -C 1 -d "$SECS" --json || true)
sleep 1
plain=$(timeout $((SECS + 30)) taskset -c "$CPUS" "$TMP/crr-loop" "$SECS")
sleep 1
rst=$(timeout $((SECS + 30)) taskset -c "$CPUS" "$TMP/crr-loop" "$SECS" rst)
sleep 1
lk4=$(timeout $((SECS + 30)) taskset -c "$CPUS" "$LOOPKIT" bench crr -C 4 -d "$SECS" --json || true)
a=$(echo "$lk" | field connections_per_s)
a4=$(echo "$lk4" | field connections_per_s)
b=$(echo "$plain" | field connections_per_s)
c=$(echo "$rst" | field connections_per_s)
printf '  %-40s %10.0f conn/s (failed %s)\n' "loopkit bench crr -C 1" "$a" "$(echo "$lk" | field failed)"
printf '  %-40s %10.0f conn/s (failed %s)\n' "loopkit bench crr -C 4" "$a4" "$(echo "$lk4" | field failed)"
printf '  %-40s %10.0f conn/s\n' "plain C loop (close, FIN)" "$b"
printf '  %-40s %10.0f conn/s\n' "plain C loop (close with RST)" "$c"
python3 - "$a" "$a4" "$b" "$c" <<'PY'
import sys
a, a4, b, c = map(float, sys.argv[1:])
print(f"  ratio loopkit -c 1 / plain FIN loop: {a / b:.2f}x   (target >= 1.0)")
print(f"  ratio loopkit -c 4 / plain FIN loop: {a4 / b:.2f}x")
print(f"  ratio loopkit -c 1 / plain RST loop: {a / c:.2f}x")
PY
