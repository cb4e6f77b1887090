#!/usr/bin/env bash
# bench/http.sh: loopkit serve against lighttpd, nginx and python3 -m http.server,
# all on 127.0.0.1, one after another in this one run, same files, same load.
# `make bench` runs it.  See bench/README.md.  It prints figures and ratios and
# never fails on timing: the exit status is non-zero only when the bench itself
# cannot run (a tool missing).
#
# Environment (all optional):
#   BENCH_SECS=5          wrk duration per keep-alive run, seconds
#   BENCH_PY_SECS=2       wrk duration against python3 -m http.server
#   BENCH_WARMUP=1        unmeasured wrk warm-up per server, seconds (0: none)
#   BENCH_CONNS=64        wrk connections
#   BENCH_AB_N=20000      ab requests (one connection each)
#   BENCH_AB_C=32         ab concurrency
#   BENCH_DL_MIB=256      size of the download file, MiB
#   BENCH_DL_RUNS=3       curl downloads per server (best one counts)
#   BENCH_ROUNDS=1        rounds over all servers (round-robin); each case reports its best run
#   BENCH_IDLE_CONNS=10000 idle keep-alive connections for the memory test (0: skip)
#   BENCH_SERVERS="loopkit lighttpd nginx-ofc nginx python"   which servers to run
#                         ("base" too, with LOOPKIT_BASE=PATH: an earlier build, for
#                         before / after ratios of a change)
#   BENCH_SERVER_CPU=1 BENCH_CLIENT_CPU=0   taskset CPUs
#   BENCH_KEEP=1          keep the temp dir (configs, logs, raw wrk/ab output)
#   BENCH_JSON=FILE       also write all figures as JSON to FILE
#   LOOPKIT=PATH          the binary (default: ./loopkit at the repository root)

set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

SECS=${BENCH_SECS:-5}
PY_SECS=${BENCH_PY_SECS:-2}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-64}
AB_N=${BENCH_AB_N:-20000}
AB_C=${BENCH_AB_C:-32}
DL_MIB=${BENCH_DL_MIB:-256}
DL_RUNS=${BENCH_DL_RUNS:-3}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
SERVERS=${BENCH_SERVERS:-loopkit lighttpd nginx-ofc nginx python}

require_tools "util-linux wrk apache2-utils curl" taskset wrk ab curl
check_cpus
warn_if_running nginx lighttpd
make_tmp loopkit-bench
head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$DOCROOT/100b"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 >"$DOCROOT/1k"
head -c $((DL_MIB * 1024 * 1024)) /dev/urandom >"$DOCROOT/big"
printf '<!doctype html><title>bench</title>\n' >"$DOCROOT/index.html"
chmod 755 "$DOCROOT"
chmod 644 "$DOCROOT"/*

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

banner "loopkit bench"
log "server on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU; $ROUNDS round(s); wrk -t1 -c$CONNS -d${SECS}s," \
	"ab -n $AB_N -c $AB_C, curl ${DL_MIB} MiB x$DL_RUNS, python wrk -d${PY_SECS}s"
log "versions: $(lighttpd -v 2>/dev/null | cut -d' ' -f1), $(nginx -v 2>&1 | sed 's/.*: //')," \
	"$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), ab $(ab -V 2>/dev/null | sed -n 's/.*Version \([^ ]*\).*/\1/p'), Python $($PY -c 'import platform; print(platform.python_version())')"
log ""

# ---------------------------------------------------------------- the runs
# run_suite NAME [python]: the measured cases against the running server
run_suite() {
	local name=$1 url="http://127.0.0.1:$SERVER_PORT" i secs=$SECS
	record "$name" start rss_mib "$(awk "BEGIN{printf \"%.2f\", $("$PY" "$BENCH_DIR/bench.py" rss "$SERVER_PID")/1024}")"
	[ "$name" = python ] && secs=$PY_SECS
	if [ "$WARMUP" != 0 ]; then
		taskset -c "$CLIENT_CPU" timeout $((WARMUP + 15)) \
			wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url/1k" >/dev/null 2>&1
	fi
	if [ "$name" != python ]; then
		load "$name" "ka-100b@$round" wrk $((secs + 30)) \
			wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s "$url/100b"
	fi
	load "$name" "ka-1k@$round" wrk $((secs + 30)) \
		wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s "$url/1k"
	[ "$name" = python ] && return 0
	load "$name" "ab-1k@$round" ab 180 \
		ab -q -r -s 10 -n "$AB_N" -c "$AB_C" "$url/1k"
	for i in $(seq "$DL_RUNS"); do
		load "$name" "dl@$round.$i" curl 120 \
			curl -s -o /dev/null --max-time 100 -w '%{http_code} %{size_download} %{time_total}' "$url/big"
	done
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		warn "$name is no longer running after the runs"
	fi
}

# start_server NAME: for run_rounds (lib.sh)
start_server() {
	local s=$1
	case $s in
	loopkit)
		if [ ! -x "$LOOPKIT" ]; then
			log "loopkit: not built ($LOOPKIT missing; run make)"
			return 1
		fi
		log "== loopkit ($("$LOOPKIT" --version 2>/dev/null | head -1))"
		start_loopkit
		;;
	base)
		if [ ! -x "$LOOPKIT_BASE" ]; then
			log "base: LOOPKIT_BASE names no binary ('$LOOPKIT_BASE')"
			return 1
		fi
		log "== base: $LOOPKIT_BASE ($("$LOOPKIT_BASE" --version 2>/dev/null | head -1))"
		LK_BIN=$LOOPKIT_BASE start_loopkit
		;;
	lighttpd)
		command -v lighttpd >/dev/null || { log "lighttpd: not installed (apt-get install lighttpd)"; return 1; }
		log "== lighttpd"
		start_lighttpd
		;;
	nginx-ofc | nginx)
		command -v nginx >/dev/null || { log "$s: not installed (apt-get install nginx-light)"; return 1; }
		if [ "$s" = nginx-ofc ]; then
			log "== nginx with open_file_cache"
			start_nginx ofc
		else
			log "== nginx default (no open_file_cache)"
			start_nginx default
		fi
		;;
	python)
		log "== python3 -m http.server (1 KiB wrk run only, ${PY_SECS}s; HTTP/1.0, so it closes every connection)"
		start_python
		;;
	*)
		warn "unknown server '$s' in BENCH_SERVERS"
		return 1
		;;
	esac || { log "$s: did not start, skipped"; return 1; }
}

run_rounds

# ---------------------------------------------------------------- memory (loopkit)
case " $SERVERS " in *" loopkit "*) do_mem=1 ;; *) do_mem=0 ;; esac
if [ "$do_mem" = 1 ] && [ -x "$LOOPKIT" ] && [ "$IDLE_CONNS" -gt 0 ]; then
	log "== loopkit memory: fresh server, idle RSS, then $IDLE_CONNS idle keep-alive connections"
	# a long idle timeout so that the connections outlive the measurement
	if start_loopkit --idle-timeout 120; then
		# START_RSS_KIB: read as soon as the URL line appeared, before any request;
		# rss: after the readiness probe (one GET /1k)
		rss=$(awk '/^VmRSS:/{print $2}' "/proc/$SERVER_PID/status")
		record loopkit idle idle_rss_kib "${START_RSS_KIB:-$rss}"
		record loopkit idle probe_rss_kib "$rss"
		log "  loopkit    start      idle RSS $(awk "BEGIN{printf \"%.1f\", ${START_RSS_KIB:-$rss}/1024}") MiB right after start," \
			"$(awk "BEGIN{printf \"%.1f\", $rss/1024}") MiB after one request"
		timeout 120 "$PY" "$BENCH_DIR/bench.py" idle --results "$RESULTS" --server loopkit \
			--pid "$SERVER_PID" --port "$SERVER_PORT" --conns "$IDLE_CONNS" --path /1k \
			--client-cpu "$CLIENT_CPU" ||
			warn "idle-connection test did not finish"
		kill -0 "$SERVER_PID" 2>/dev/null || warn "loopkit died during the memory test"
		stop_server
	else
		log "loopkit: did not start for the memory test"
	fi
fi

finish "$BENCH_DIR/bench.py"
