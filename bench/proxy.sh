#!/usr/bin/env bash
# bench/proxy.sh: loopkit proxy against haproxy (mode tcp) and socat, and no proxy at
# all (the limit), one after another in this one run, same upstreams, same clients:
#   bulk throughput      iperf3 through the proxy (Gbit/s)
#   ping-pong latency    sockperf ping-pong, 64-byte messages: p50 and p99, and what the
#                        proxy adds to the direct figures
#   connections/s        ab, a new connection per request, to loopkit serve behind it;
#                        and the proxy's own CPU time per connection (us/conn, from
#                        schedstat: less noisy than the rate on a shared machine)
#   memory per idle pair PSS growth of the proxy's processes over BENCH_IDLE connections
# Every proxy is pinned with taskset to BENCH_PROXY_CPU, the clients and upstreams to
# BENCH_CLIENT_CPU; each figure is the median of BENCH_ROUNDS rounds (memory per idle
# pair: measured in the first round only); ratios are
# printed against haproxy. Timing never fails the script: its exit status is non-zero
# only when the bench cannot run (a tool missing).
#
# Environment (all optional):
#   BENCH_SECS=5            seconds per iperf3 and sockperf run
#   BENCH_ROUNDS=3          rounds over all proxies (in turn, every other round in reverse
#                           order); medians reported
#   BENCH_AB_N=20000        ab requests (one connection each), BENCH_AB_C=32 concurrent
#   BENCH_IDLE=2000         idle pairs for the memory figure (socat: BENCH_IDLE_SOCAT=200,
#                           it forks a process per connection)
#   BENCH_PROXIES="direct loopkit haproxy socat"
#   BENCH_PROXY_CPU=1 BENCH_CLIENT_CPU=0
#   LOOPKIT=PATH            the binary (default: ./loopkit at the repository root)

set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
export LC_ALL=C

SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
AB_N=${BENCH_AB_N:-20000}
AB_C=${BENCH_AB_C:-32}
IDLE=${BENCH_IDLE:-2000}
IDLE_SOCAT=${BENCH_IDLE_SOCAT:-200}
PROXIES=${BENCH_PROXIES:-direct loopkit haproxy socat}
SERVER_CPU=${BENCH_PROXY_CPU:-1}
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

missing=()
for t in taskset iperf3 sockperf ab haproxy socat curl; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
	warn "missing tools: ${missing[*]} (scripts/deps installs them)"
	exit 1
fi
[ -x "$LOOPKIT" ] || { warn "no $LOOPKIT; run make first"; exit 1; }

TMP=$(mktemp -d /tmp/loopkit-bench-proxy.XXXXXX)
trap 'stop_all; rm -rf "$TMP"' EXIT
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- upstreams (client CPU)
start_bg() { # start_bg LOG CMD... : runs CMD pinned to the client CPU, records its pid
	local logf=$1
	shift
	taskset -c "$CLIENT_CPU" "$@" >"$logf" 2>&1 </dev/null &
	STARTED_PIDS+=("$!")
	LAST_PID=$!
}


IPERF_PORT=$(free_port)
start_bg "$TMP/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
SOCKPERF_PORT=$(free_port)
start_bg "$TMP/sockperf.log" sockperf sr --tcp -i 127.0.0.1 -p "$SOCKPERF_PORT"
mkdir -p "$TMP/www" && printf 'hello\n' >"$TMP/www/a.txt"
WEB_PORT=$(free_port)
start_bg "$TMP/serve.log" "$LOOPKIT" serve "$TMP/www" --port "$WEB_PORT" --threads 1 --quiet
IDLE_PORT=$(free_port)
start_bg "$TMP/idle.log" "$PY" -c "
import socket, selectors, resource
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(('127.0.0.1', $IDLE_PORT)); ls.listen(4096); held = []
while True: held.append(ls.accept()[0])"
for p in "$IPERF_PORT" "$SOCKPERF_PORT" "$WEB_PORT" "$IDLE_PORT"; do wait_port "$p" || exit 1; done

# ---------------------------------------------------------------- proxies (proxy CPU)
# start_proxy KIND UPSTREAM_PORT: sets PROXY_PID and PROXY_PORT ("direct": the upstream)
start_proxy() {
	local kind=$1 up=$2 port
	PROXY_PID=
	if [ "$kind" = direct ]; then
		PROXY_PORT=$up
		return 0
	fi
	port=$(free_port)
	case $kind in
	loopkit)
		taskset -c "$SERVER_CPU" "$LOOPKIT" proxy "127.0.0.1:$port" "127.0.0.1:$up" --api off -q \
			>"$TMP/loopkit.log" 2>&1 </dev/null &
		;;
	haproxy)
		haproxy_tcp_cfg "$port" "$up" >"$TMP/haproxy.cfg"
		taskset -c "$SERVER_CPU" haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 </dev/null &
		;;
	socat)
		taskset -c "$SERVER_CPU" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=1024" \
			"TCP:127.0.0.1:$up,nodelay" >"$TMP/socat.log" 2>&1 </dev/null &
		;;
	esac
	PROXY_PID=$!
	STARTED_PIDS+=("$PROXY_PID")
	PROXY_PORT=$port
	wait_port "$port"
}

stop_proxy() {
	[ -n "$PROXY_PID" ] || return 0
	stop_pid "$PROXY_PID"
	forget_pid "$PROXY_PID"
	PROXY_PID=
}

client() { taskset -c "$CLIENT_CPU" "$@"; }

# ---------------------------------------------------------------- the measures
declare -A R # R[kind.measure] = "v1 v2 ..." over rounds

add() { R[$1]="${R[$1]:-} $2"; }

measure_tput() {
	local kind=$1 out
	start_proxy "$kind" "$IPERF_PORT" || return
	out=$(client timeout $((SECS + 20)) iperf3 -c 127.0.0.1 -p "$PROXY_PORT" -t "$SECS" -J 2>/dev/null)
	add "$kind.gbps" "$(printf '%s' "$out" | "$PY" -c \
		'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' \
		2>/dev/null || echo nan)"
	stop_proxy
}

measure_pp() {
	local kind=$1 out
	start_proxy "$kind" "$SOCKPERF_PORT" || return
	out=$(client timeout $((SECS + 20)) sockperf pp --tcp -i 127.0.0.1 -p "$PROXY_PORT" -m 64 -t "$SECS" 2>&1)
	add "$kind.p50" "$(printf '%s\n' "$out" | awk '/percentile 50.000 =/{print $NF}')"
	add "$kind.p99" "$(printf '%s\n' "$out" | awk '/percentile 99.000 =/{print $NF}')"
	stop_proxy
}

cpu_ns() { # cpu_ns PID: CPU time of all PID's threads so far, ns (schedstat)
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'
}

measure_cps() {
	local kind=$1 out c0 c1 done
	start_proxy "$kind" "$WEB_PORT" || return
	case $kind in direct | socat) ;; *) c0=$(cpu_ns "$PROXY_PID") ;; esac # socat forks per connection
	out=$(client timeout 120 ab -q -n "$AB_N" -c "$AB_C" "http://127.0.0.1:$PROXY_PORT/a.txt" 2>&1)
	add "$kind.cps" "$(printf '%s\n' "$out" | awk '/^Requests per second:/{printf "%.0f", $4}')"
	done=$(printf '%s\n' "$out" | awk '/^Complete requests:/{print $3}')
	if [ -n "${c0:-}" ] && [ -n "$done" ] && [ "$done" -gt 0 ]; then
		c1=$(cpu_ns "$PROXY_PID")
		add "$kind.cpu_us" "$(awk -v a="$c0" -v b="$c1" -v n="$done" 'BEGIN{printf "%.2f", (b - a) / n / 1000}')"
	fi
	add "$kind.failed" "$(printf '%s\n' "$out" | awk '/^Failed requests:/{print $3}')"
	stop_proxy
}

measure_idle() {
	local kind=$1 n=$IDLE
	[ "$kind" = direct ] && return
	[ "$kind" = socat ] && n=$IDLE_SOCAT
	start_proxy "$kind" "$IDLE_PORT" || return
	add "$kind.idle_kib" "$(client "$PY" "$BENCH_DIR/proxy_idle.py" "$PROXY_PORT" "$n" "$PROXY_PID" 2>/dev/null || echo nan)"
	stop_proxy
}

median() { printf '%s\n' "$@" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{if(NR==0){print "nan"}else if(NR%2){print a[(NR+1)/2]}else{print (a[NR/2]+a[NR/2+1])/2}}'; }

log "bench/proxy.sh: $ROUNDS rounds, ${SECS}s runs; proxies on CPU $SERVER_CPU, clients and upstreams on CPU $CLIENT_CPU"
log "loopkit $("$LOOPKIT" --version | awk '{print $2}'), $(haproxy -v | head -1 | awk '{print "haproxy", $3}'), $(socat -V | awk '/socat version/{print "socat", $3}')"
for r in $(seq "$ROUNDS"); do
	# ABBA: every other round runs the proxies in reverse order, so that a drift of the
	# machine (load, TIME_WAIT sockets piling up) does not favour whichever runs first
	order=$PROXIES
	[ $((r % 2)) = 0 ] && order=$(printf '%s\n' $PROXIES | tac | tr '\n' ' ')
	for k in $order; do
		measure_tput "$k"
		measure_pp "$k"
		measure_cps "$k"
		[ "$r" = 1 ] && measure_idle "$k"
	done
	log "round $r done"
done

# ---------------------------------------------------------------- report
m() { median ${R[$1]:-}; }
printf '\n%-9s %10s %10s %10s %10s %10s %10s %10s %12s\n' proxy "Gbit/s" "p50 us" "p99 us" "+p50 us" "+p99 us" "conn/s" "us/conn" "KiB/idle"
for k in $PROXIES; do
	printf '%-9s %10s %10s %10s %10s %10s %10s %10s %12s\n' "$k" "$(m "$k.gbps")" "$(m "$k.p50")" "$(m "$k.p99")" \
		"$(awk -v a="$(m "$k.p50")" -v b="$(m direct.p50)" 'BEGIN{printf "%.1f", a-b}')" \
		"$(awk -v a="$(m "$k.p99")" -v b="$(m direct.p99)" 'BEGIN{printf "%.1f", a-b}')" \
		"$(m "$k.cps")" "$(m "$k.cpu_us")" "$(m "$k.idle_kib")"
done
if [[ " $PROXIES " == *" loopkit "* && " $PROXIES " == *" haproxy "* ]]; then
	log ""
	log "loopkit / haproxy (throughput and conn/s: higher is better; added latency and memory: lower is better)"
	awk -v a="$(m loopkit.gbps)" -v b="$(m haproxy.gbps)" 'BEGIN{printf "  throughput      %.2fx\n", a/b}'
	awk -v a="$(m loopkit.p50)" -v b="$(m haproxy.p50)" -v d="$(m direct.p50)" \
		'BEGIN{printf "  added p50       %.2fx (%.1f vs %.1f us)\n", (a-d)/(b-d), a-d, b-d}'
	awk -v a="$(m loopkit.p99)" -v b="$(m haproxy.p99)" -v d="$(m direct.p99)" \
		'BEGIN{printf "  added p99       %.2fx (%.1f vs %.1f us)\n", (a-d)/(b-d), a-d, b-d}'
	awk -v a="$(m loopkit.cps)" -v b="$(m haproxy.cps)" 'BEGIN{printf "  connections/s   %.2fx\n", a/b}'
	awk -v a="$(m loopkit.cpu_us)" -v b="$(m haproxy.cpu_us)" \
		'BEGIN{printf "  proxy CPU per connection %.2fx (%.1f vs %.1f us)\n", a/b, a, b}'
	# The spread: each round's loopkit figure over the haproxy one of the same round.
	by_round() { # by_round KEY LABEL
		local ratios
		# shellcheck disable=SC2086
		ratios=$(paste -d' ' <(printf '%s\n' ${R[loopkit.$1]:-}) <(printf '%s\n' ${R[haproxy.$1]:-}) |
			awk '$1 && $2 {printf "%.2f\n", $1 / $2}')
		# shellcheck disable=SC2086
		[ -n "$ratios" ] && log "  $2 by round: $(echo $ratios) (median $(median $ratios)x)"
	}
	by_round gbps "throughput   "
	by_round cps "connections/s"
	awk -v a="$(m loopkit.idle_kib)" -v b="$(m haproxy.idle_kib)" 'BEGIN{printf "  memory per pair %.2fx (%.2f vs %.2f KiB)\n", a/b, a, b}'
	awk -v a="$(m loopkit.gbps)" -v b="$(m direct.gbps)" 'BEGIN{printf "  loopkit / direct loopback throughput %.2fx\n", a/b}'
fi
for k in $PROXIES; do
	f=$(m "$k.failed")
	[ "$f" != nan ] && [ "${f%.*}" != 0 ] && warn "$k: ab counted $f failed requests (median)"
done
exit 0
