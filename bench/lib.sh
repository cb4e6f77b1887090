# shellcheck shell=bash
# bench/lib.sh: what bench/http.sh and bench/ftp.sh share (bash; sourced after the caller
# sets BENCH_DIR): the knobs both read, the checks before a run, the temp dir and its
# cleanup, starting and stopping the servers under test (all on 127.0.0.1, each pinned
# with taskset to $SERVER_CPU), the rounds over the servers, and the end of a run.
# Every process started here is recorded by pid in STARTED_PIDS and stopped by pid
# (never by name) from the EXIT trap.

ROOT=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
export LC_ALL=C
ROUNDS=${BENCH_ROUNDS:-1}
SERVER_CPU=${BENCH_SERVER_CPU:-1}
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
LOOPKIT=${LOOPKIT:-$ROOT/loopkit}
# LOOPKIT_BASE=PATH: an earlier build, run as server "base" beside the others (before /
# after ratios of a change: add "base" to the servers list)
LOOPKIT_BASE=${LOOPKIT_BASE:-}

STARTED_PIDS=()
STOPPED_TREES=()
START_RSS_KIB=
SERVER_PID=
SERVER_PORT=

log() { printf '%s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- before a run

# require_tools "DEBIAN PACKAGES" TOOL...: exits 1, naming the packages, when a tool is missing
require_tools() {
	local pkgs=$1 t missing=()
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		warn "missing tools: ${missing[*]} (Debian: apt-get install $pkgs)"
		exit 1
	fi
}

# check_cpus: sets ncpu; with one CPU, server and clients share CPU 0 and the run says so
check_cpus() {
	ncpu=$(nproc)
	if [ "$ncpu" -lt 2 ]; then
		warn "only $ncpu CPU: server and clients share CPU 0, figures are not comparable to the targets"
		SERVER_CPU=0
		CLIENT_CPU=0
	fi
}

# warn_if_running NAME...: a process of that name that this script did not start would
# compete for the CPUs; say so, leave it alone
warn_if_running() {
	local n others
	for n in "$@"; do
		if others=$(pgrep -x "$n" 2>/dev/null); then
			warn "a $n not started by this script is running (pids ${others//$'\n'/ }); figures may be disturbed"
		fi
	done
}

# make_tmp PREFIX: the run's temp dir $TMP (removed at exit unless BENCH_KEEP=1, after the
# EXIT trap stopped every server started here), DOCROOT inside it, RESULTS and LOADLOG
make_tmp() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# servers that drop privileges (nginx's worker, vsftpd's sessions) read the tree
	chmod 755 "$TMP"
	DOCROOT=$TMP/www
	RESULTS=$TMP/results.tsv
	LOADLOG=$TMP/load.log
	mkdir -p "$DOCROOT"
	: >"$RESULTS"
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	trap - EXIT INT TERM
	stop_all
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "bench: kept $TMP"
	else
		rm -rf "$TMP"
	fi
}

# banner TITLE: the first line of a run (when, which kernel, which CPUs)
banner() {
	log "$1: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
}

# ---------------------------------------------------------------- stopping

# pid and all descendants of a pid (nginx master + worker)
pid_tree() {
	local p=$1 c
	printf '%s\n' "$p"
	for c in $(pgrep -P "$p" 2>/dev/null); do
		pid_tree "$c"
	done
}

# stop_pid PID: SIGTERM the process (and its descendants if the parent has not
# taken them down after 5 s), then SIGKILL whatever is left of that tree.
stop_pid() {
	local pid=$1 tree i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	tree=$(pid_tree "$pid")
	# shellcheck disable=SC2206 # pids, one word each
	STOPPED_TREES+=($tree)
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# anything of the tree still alive (the parent did not exit, or left a child behind)
	for p in $tree; do
		if kill -0 "$p" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
		fi
	done
	wait "$pid" 2>/dev/null
	return 0
}

forget_pid() {
	local pid=$1 i
	for i in "${!STARTED_PIDS[@]}"; do
		[ "${STARTED_PIDS[$i]}" = "$pid" ] && unset 'STARTED_PIDS[i]'
	done
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	stop_pid "$SERVER_PID"
	forget_pid "$SERVER_PID"
	SERVER_PID=
	SERVER_PORT=
}

stop_all() {
	local pid
	for pid in "${STARTED_PIDS[@]}"; do
		stop_pid "$pid"
	done
	STARTED_PIDS=()
}

# ---------------------------------------------------------------- starting

wait_port() { # wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s)
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	warn "nothing listens on 127.0.0.1:$1"
	return 1
}

# haproxy_tcp_cfg PORT UPSTREAM_PORT: haproxy's config for a TCP proxy on 127.0.0.1:PORT
# to 127.0.0.1:UPSTREAM_PORT, one thread (the peer of loopkit proxy in the benches)
haproxy_tcp_cfg() {
	cat <<-EOF
		global
		    maxconn 8000
		    nbthread 1
		defaults
		    mode tcp
		    timeout connect 5s
		    timeout client 1h
		    timeout server 1h
		frontend f
		    bind 127.0.0.1:$1
		    default_backend b
		backend b
		    server s1 127.0.0.1:$2
	EOF
}

free_port() { "$PY" "$BENCH_DIR/bench.py" port; }

# spawn PORT CMD... [>LOG]: runs a server in the background, stdin from /dev/null and its
# output where the call is redirected; it becomes SERVER_PID, listening on SERVER_PORT
spawn() {
	SERVER_PORT=$1
	shift
	"$@" </dev/null &
	SERVER_PID=$!
	STARTED_PIDS+=("$SERVER_PID")
}

# wait_ready NAME LOGFILE WANT CURL_ARGS...: until `curl -s -o /dev/null CURL_ARGS`
# prints WANT (10 s at most) while the server lives; else its log's last lines
wait_ready() {
	local name=$1 logf=$2 want=$3 i out
	shift 3
	for i in $(seq 100); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			warn "$name exited during startup; last lines of $logf:"
			tail -n 5 "$logf" >&2 2>/dev/null
			return 1
		fi
		out=$(curl -s -o /dev/null --max-time 2 "$@" 2>/dev/null)
		[ "$out" = "$want" ] && return 0
		sleep 0.1
	done
	warn "$name: curl $* did not give '$want' within 10 s (last: '${out:-none}')"
	tail -n 5 "$logf" >&2 2>/dev/null
	return 1
}

# wait_http URL NAME LOGFILE: until URL answers 200
wait_http() { wait_ready "$2" "$3" 200 -w '%{http_code}' "$1"; }

# start_loopkit [extra serve flags...]: sets SERVER_PID and SERVER_PORT (the binary:
# $LK_BIN when set, else $LOOPKIT)
start_loopkit() {
	local out=$TMP/loopkit.out err=$TMP/loopkit.err i line
	: >"$out"
	spawn "" taskset -c "$SERVER_CPU" "${LK_BIN:-$LOOPKIT}" serve "$DOCROOT" --port 0 --threads 1 --quiet "$@" \
		>"$out" 2>"$err"
	for i in $(seq 100); do
		line=$(head -n 1 "$out" 2>/dev/null)
		case $line in
		http://*:*/*)
			SERVER_PORT=${line##*:}
			SERVER_PORT=${SERVER_PORT%%/*}
			# listening, and no request made yet (used by http.sh)
			# shellcheck disable=SC2034
			START_RSS_KIB=$(awk '/^VmRSS:/{print $2}' "/proc/$SERVER_PID/status" 2>/dev/null)
			break
			;;
		esac
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$SERVER_PORT" ]; then
		warn "loopkit did not print its URL (first stdout line: '${line}'); stderr:"
		tail -n 5 "$err" >&2
		stop_server
		return 1
	fi
	wait_http "http://127.0.0.1:$SERVER_PORT/1k" loopkit "$err" || { stop_server; return 1; }
}

start_lighttpd() {
	local port conf=$TMP/lighttpd.conf
	port=$(free_port) || return 1
	# One process (server.max-worker left at its default), no mod_accesslog.
	cat >"$conf" <<EOF
server.document-root = "$DOCROOT"
server.bind          = "127.0.0.1"
server.port          = $port
server.errorlog      = "$TMP/lighttpd.error.log"
server.upload-dirs   = ( "$TMP" )
index-file.names     = ( "index.html" )
mimetype.assign      = ( ".html" => "text/html", ".txt" => "text/plain",
                         ".bin" => "application/octet-stream" )
EOF
	spawn "$port" taskset -c "$SERVER_CPU" lighttpd -D -f "$conf" >"$TMP/lighttpd.out" 2>&1
	wait_http "http://127.0.0.1:$port/1k" lighttpd "$TMP/lighttpd.out" || { stop_server; return 1; }
}

# start_nginx ofc|default
start_nginx() {
	local variant=$1 port conf=$TMP/nginx-$1.conf ofc=
	port=$(free_port) || return 1
	mkdir -p "$TMP/nginx-tmp"
	if [ "$variant" = ofc ]; then
		ofc='open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 30s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;'
	fi
	# One worker under a master, in the foreground; everything it writes stays
	# in $TMP.  sendfile/tcp_nopush as in Debian's stock nginx.conf.
	cat >"$conf" <<EOF
worker_processes 1;
master_process on;
daemon off;
pid $TMP/nginx-$variant.pid;
error_log $TMP/nginx-$variant.error.log warn;
events { }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path $TMP/nginx-tmp/proxy;
    fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
    scgi_temp_path $TMP/nginx-tmp/scgi;
    $ofc
    server {
        listen 127.0.0.1:$port;
        root $DOCROOT;
    }
}
EOF
	[ -r /etc/nginx/mime.types ] || sed -i '/mime.types/d' "$conf"
	spawn "$port" taskset -c "$SERVER_CPU" nginx -p "$TMP/" -e "$TMP/nginx-$variant.error.log" -c "$conf" \
		>"$TMP/nginx-$variant.out" 2>&1
	wait_http "http://127.0.0.1:$port/1k" "nginx ($variant)" "$TMP/nginx-$variant.error.log" ||
		{ stop_server; return 1; }
}

start_python() {
	local port
	port=$(free_port) || return 1
	# As a developer runs it: its default protocol, HTTP/1.0, answers each request
	# with Connection: close, so wrk reconnects (with -p HTTP/1.1 it keeps the
	# connections but stalls on Nagle + delayed ACK and is ~8x slower still).
	# Its per-request log line goes to /dev/null.
	spawn "$port" taskset -c "$SERVER_CPU" "$PY" -m http.server "$port" -b 127.0.0.1 -d "$DOCROOT" \
		>/dev/null 2>&1
	wait_http "http://127.0.0.1:$port/1k" python /dev/null || { stop_server; return 1; }
}

# record SERVER CASE METRIC VALUE
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }

# load NAME CASE KIND TIMEOUT CMD...: run a load generator pinned to $CLIENT_CPU
load() {
	local name=$1 case=$2 kind=$3 to=$4
	shift 4
	"$PY" "$BENCH_DIR/bench.py" load --results "$RESULTS" --log "$LOADLOG" \
		--server "$name" --case "$case" --pid "$SERVER_PID" --kind "$kind" --timeout "$to" \
		--cpus "$SERVER_CPU,$CLIENT_CPU" \
		-- taskset -c "$CLIENT_CPU" "$@"
}

# ---------------------------------------------------------------- the run

# run_rounds: ROUNDS times, each server of $SERVERS in turn: start_server NAME (the
# caller's: starts it, or says why not and returns 1), run_suite NAME, stop_server
run_rounds() {
	local s
	for round in $(seq "$ROUNDS"); do
		[ "$ROUNDS" -gt 1 ] && log "-- round $round of $ROUNDS"
		for s in $SERVERS; do
			start_server "$s" || continue
			run_suite "$s"
			stop_server
		done
	done
}

# finish HELPER: stops what is left, prints HELPER's report, checks by pid that nothing
# this script started outlives it, exits 0 (the bench never fails on its figures)
finish() {
	local p left=
	stop_all
	"$PY" "$1" report --results "$RESULTS" ${BENCH_JSON:+--json "$BENCH_JSON"}
	for p in "${STOPPED_TREES[@]}"; do
		kill -0 "$p" 2>/dev/null && left="$left $p($(cat "/proc/$p/comm" 2>/dev/null))"
	done
	if [ -n "$left" ]; then
		warn "still running after the bench:$left"
	else
		log "All servers started by the bench are stopped."
	fi
	exit 0
}
