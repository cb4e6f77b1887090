#!/usr/bin/env bash
# bench/stall.sh: many clients that stop reading bulk downloads, through loopkit proxy,
# haproxy (mode tcp) and loopkit isolate -p, in one run. Each client GETs a 20 MB file
# from loopkit serve, waits PAUSE s without reading, then the clients are read one after
# another. What it shows: whether a relay's buffering takes the machine past tcp_mem's
# pressure mark (/proc/sys/net/ipv4/tcp_mem), where the kernel's drops stall pairs for
# seconds. Prints, per relay and round, the seconds to read everything after the pause,
# the longest gap without a byte on one connection, and the connections stalled past
# the timeout; then loopkit's times over haproxy's. Never fails on timing.
#   STALL_CLIENTS=250 STALL_ROUNDS=3 STALL_PAUSE=1 STALL_TIMEOUT=4 LOOPKIT=./loopkit
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
export LC_ALL=C
N=${STALL_CLIENTS:-250}
ROUNDS=${STALL_ROUNDS:-3}
PAUSE=${STALL_PAUSE:-1}
TIMEOUT=${STALL_TIMEOUT:-4}
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
for t in haproxy "$LOOPKIT"; do
	command -v "$t" >/dev/null 2>&1 || { warn "missing: $t (scripts/deps installs haproxy; make builds loopkit)"; exit 1; }
done
TMP=$(mktemp -d /tmp/loopkit-bench-stall.XXXXXX)
trap 'stop_all; rm -rf "$TMP"' EXIT
ulimit -n "$(ulimit -Hn)"
mkdir "$TMP/www"
head -c 20000000 /dev/urandom >"$TMP/www/big.bin"

UP=$(free_port)
"$LOOPKIT" serve "$TMP/www" --port "$UP" --quiet >"$TMP/serve.log" 2>&1 </dev/null &
STARTED_PIDS+=("$!")
wait_port "$UP" || exit 1

wait_served() { # wait_served PORT: until the file is served through PORT (5 s)
	local i
	for i in $(seq 100); do
		[ "$(curl -s -o /dev/null -r 0-0 -w '%{http_code}' "http://127.0.0.1:$1/big.bin")" = 206 ] && return 0
		sleep 0.05
	done
	warn "nothing serves through 127.0.0.1:$1"
	return 1
}

run_one() { # run_one NAME PORT: one round through the relay listening on PORT
	local out
	out=$("$PY" "$BENCH_DIR/stall_client.py" "$N" "$2" /big.bin "$PAUSE" "$TIMEOUT" 2>&1)
	read -r secs gap stalled mem <<<"$out"
	if ! [[ "$secs" =~ ^[0-9.]+$ ]]; then
		log "  $1: the clients failed: $(printf '%s\n' "$out" | tail -1)"
		R[$1]="${R[$1]:-} nan"
		return
	fi
	log "  $1: ${secs:-?} s, longest gap ${gap:-?} s, stalled ${stalled:-?}; TCP memory after the pause ${mem:-?} pages (pressure mark $(awk '{print $2}' /proc/sys/net/ipv4/tcp_mem))"
	R[$1]="${R[$1]:-} ${secs:-nan}"
}

declare -A R
log "bench/stall.sh: $N clients, 20 MB each, ${PAUSE}s pause, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	log "round $r"
	P=$(free_port)
	"$LOOPKIT" proxy -q --api off "127.0.0.1:$P" "127.0.0.1:$UP" >/dev/null 2>&1 </dev/null &
	pid=$!; STARTED_PIDS+=("$pid"); wait_port "$P" && run_one loopkit "$P"; stop_pid "$pid"; forget_pid "$pid"
	P=$(free_port)
	haproxy_tcp_cfg "$P" "$UP" >"$TMP/h.cfg"
	haproxy -db -f "$TMP/h.cfg" >/dev/null 2>&1 </dev/null &
	pid=$!; STARTED_PIDS+=("$pid"); wait_port "$P" && run_one haproxy "$P"; stop_pid "$pid"; forget_pid "$pid"
	P=$(free_port)
	"$LOOPKIT" isolate -q -p "$P:8000" -- "$LOOPKIT" serve "$TMP/www" --port 8000 --quiet >/dev/null 2>&1 </dev/null &
	pid=$!; STARTED_PIDS+=("$pid"); wait_served "$P" && run_one isolate "$P"; stop_pid "$pid"; forget_pid "$pid"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# shellcheck disable=SC2086
log "median seconds: loopkit proxy $(median ${R[loopkit]}), haproxy $(median ${R[haproxy]}), isolate -p $(median ${R[isolate]})"
# shellcheck disable=SC2086
awk -v a="$(median ${R[loopkit]})" -v b="$(median ${R[haproxy]})" 'BEGIN{printf "loopkit proxy / haproxy time: %.2fx (lower is better)\n", a/b}'
exit 0
