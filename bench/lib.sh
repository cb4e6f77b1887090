# shellcheck shell=bash
# bench/lib.sh: helpers sourced by bench/http.sh (bash).
# Starting and stopping the servers under test, all on 127.0.0.1, each pinned
# with taskset to $SERVER_CPU.  Every process started here is recorded by pid in
# STARTED_PIDS and stopped by pid (never by name) from the EXIT trap.

STARTED_PIDS=()
STOPPED_TREES=()
START_RSS_KIB=
SERVER_PID=
SERVER_PORT=

log() { printf '%s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }

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

free_port() { "$PY" "$BENCH_DIR/bench.py" port; }

# wait_http URL NAME LOGFILE: until URL answers 200 (5 s at most) and the server lives
wait_http() {
	local url=$1 name=$2 logf=$3 i code
	for i in $(seq 100); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			warn "$name exited during startup; last lines of $logf:"
			tail -n 5 "$logf" >&2 2>/dev/null
			return 1
		fi
		code=$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$url" 2>/dev/null)
		[ "$code" = 200 ] && return 0
		sleep 0.05
	done
	warn "$name did not answer $url with 200 within 5 s (last status: ${code:-none})"
	tail -n 5 "$logf" >&2 2>/dev/null
	return 1
}

# start_loopkit [extra serve flags...]: sets SERVER_PID and SERVER_PORT
start_loopkit() {
	local out=$TMP/loopkit.out err=$TMP/loopkit.err i line
	: >"$out"
	taskset -c "$SERVER_CPU" "$LOOPKIT" serve "$DOCROOT" --port 0 --threads 1 --quiet "$@" \
		>"$out" 2>"$err" </dev/null &
	SERVER_PID=$!
	STARTED_PIDS+=("$SERVER_PID")
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
	taskset -c "$SERVER_CPU" lighttpd -D -f "$conf" >"$TMP/lighttpd.out" 2>&1 </dev/null &
	SERVER_PID=$!
	SERVER_PORT=$port
	STARTED_PIDS+=("$SERVER_PID")
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
	taskset -c "$SERVER_CPU" nginx -p "$TMP/" -e "$TMP/nginx-$variant.error.log" -c "$conf" \
		>"$TMP/nginx-$variant.out" 2>&1 </dev/null &
	SERVER_PID=$!
	SERVER_PORT=$port
	STARTED_PIDS+=("$SERVER_PID")
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
	taskset -c "$SERVER_CPU" "$PY" -m http.server "$port" -b 127.0.0.1 -d "$DOCROOT" \
		>/dev/null 2>&1 </dev/null &
	SERVER_PID=$!
	SERVER_PORT=$port
	STARTED_PIDS+=("$SERVER_PID")
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
