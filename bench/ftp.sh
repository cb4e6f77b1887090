#!/usr/bin/env bash
# bench/ftp.sh: loopkit serve's FTP against vsftpd and pyftpdlib, all on
# 127.0.0.1, one after another in this one run, same files, same clients.
# See bench/README.md ("FTP").  It prints figures and ratios and never fails on
# timing: the exit status is non-zero only when the bench itself cannot run
# (a tool missing).
#
# Cases, per server:
#   retr   256 MiB RETR with curl -o /dev/null, BENCH_FTP_RETR_RUNS runs (the median run counts)
#   lftp   200 x 1 KiB files mirrored in one lftp session, BENCH_FTP_LFTP_RUNS runs
#   greet  connect, time until the "220" greeting arrives, BENCH_FTP_GREET_N times
# Servers: loopkit (default --sniff-ms), loopkit-s50 (--sniff-ms 50: lftp and
# greeting only), vsftpd, pyftpdlib.
#
# Environment (all optional):
#   BENCH_DL_MIB=256            size of the RETR file, MiB
#   BENCH_FTP_RETR_RUNS=3       curl downloads per server
#   BENCH_FTP_FILES=200         small files mirrored by lftp
#   BENCH_FTP_LFTP_RUNS=3       measured lftp sessions per server (after one unmeasured
#                               warm-up session with lftp -d, kept for the command counts)
#   BENCH_FTP_GREET_N=20        greeting connections per server
#   BENCH_ROUNDS=1              rounds over all servers (round-robin)
#   BENCH_FTP_SERVERS="loopkit loopkit-s50 vsftpd pyftpdlib"
#                         ("base" too, with LOOPKIT_BASE=PATH: an earlier build)
#   BENCH_SERVER_CPU=1 BENCH_CLIENT_CPU=0   taskset CPUs
#   BENCH_KEEP=1                keep the temp dir (configs, logs, raw client output)
#   BENCH_JSON=FILE             also write the summarized figures as JSON to FILE
#   LOOPKIT=PATH                the binary (default: ./loopkit at the repository root)

set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

DL_MIB=${BENCH_DL_MIB:-256}
RETR_RUNS=${BENCH_FTP_RETR_RUNS:-3}
NFILES=${BENCH_FTP_FILES:-200}
LFTP_RUNS=${BENCH_FTP_LFTP_RUNS:-3}
GREET_N=${BENCH_FTP_GREET_N:-20}
SERVERS=${BENCH_FTP_SERVERS:-loopkit loopkit-s50 vsftpd pyftpdlib}
FTPB=$BENCH_DIR/ftp_bench.py

require_tools "util-linux curl lftp procps" taskset curl lftp pgrep
have_vsftpd=0
have_pyftpdlib=0
command -v vsftpd >/dev/null 2>&1 && have_vsftpd=1
"$PY" -c 'import pyftpdlib' 2>/dev/null && have_pyftpdlib=1
check_cpus
warn_if_running vsftpd  # Debian's vsftpd service, say
make_tmp loopkit-ftpbench
# vsftpd chroots anonymous sessions into the docroot as user ftp: the tree must be
# readable by it and not writable (chmod below)
mkdir -p "$DOCROOT/small" "$TMP/mirror" "$TMP/lftp-home"
head -c 1024 /dev/urandom >"$DOCROOT/1k"
head -c $((DL_MIB * 1024 * 1024)) /dev/urandom >"$DOCROOT/big"
"$PY" - "$DOCROOT/small" "$NFILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
        f.write(os.urandom(1024))
EOF
chmod 755 "$DOCROOT" "$DOCROOT/small"
chmod 644 "$DOCROOT"/1k "$DOCROOT"/big "$DOCROOT"/small/*
BIG_BYTES=$((DL_MIB * 1024 * 1024))
# lftp keeps its history and cache files under LFTP_HOME: not in the user's home
export LFTP_HOME=$TMP/lftp-home

banner "loopkit FTP bench"
log "server on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU; $ROUNDS round(s); RETR ${DL_MIB} MiB x$RETR_RUNS (curl)," \
	"$NFILES x 1 KiB in one lftp session x$LFTP_RUNS, greeting x$GREET_N"
log "versions: $(curl --version | head -1 | cut -d' ' -f1-2), $(lftp --version | head -1 | sed 's/.*Version \([^ ]*\).*/lftp \1/')," \
	"$(dpkg-query -W -f='vsftpd ${Version}' vsftpd 2>/dev/null || echo 'vsftpd ?')," \
	"pyftpdlib $("$PY" -c 'import pyftpdlib; print(pyftpdlib.__ver__)' 2>/dev/null || echo '?')," \
	"Python $("$PY" -c 'import platform; print(platform.python_version())')"
log ""

# ---------------------------------------------------------------- servers
# MEASURE_PID: root of the process tree whose CPU is measured; EXCLUDE_PIDS: pids
# in that tree that are not the server (the reap wrapper); REAPED: its log
MEASURE_PID=
EXCLUDE_PIDS=
REAPED=

# wait_ftp NAME LOGFILE: until a 1 KiB RETR works on $SERVER_PORT
wait_ftp() {
	wait_ready "$1" "$2" "226 1024" -w '%{response_code} %{size_download}' "ftp://127.0.0.1:$SERVER_PORT/1k"
}

# start_ftp_loopkit [serve flags...]: lib.sh's start_loopkit (HTTP readiness on
# the same port), then the ftp:// line and one RETR
start_ftp_loopkit() {
	local line
	start_loopkit "$@" || return 1
	line=$(sed -n 2p "$TMP/loopkit.out")
	if [ "$line" != "ftp://127.0.0.1:$SERVER_PORT/" ]; then
		warn "loopkit: stdout line 2 is '$line', expected 'ftp://127.0.0.1:$SERVER_PORT/'"
		stop_server
		return 1
	fi
	MEASURE_PID=$SERVER_PID
	EXCLUDE_PIDS=
	REAPED=
	wait_ftp loopkit "$TMP/loopkit.err" || { stop_server; return 1; }
}

start_vsftpd() {
	local port conf=$TMP/vsftpd.conf
	port=$(free_port) || return 1
	mkdir -p "$TMP/vsftpd-empty"
	chmod 555 "$TMP/vsftpd-empty"
	# Standalone, in the foreground, anonymous read-only; everything else at
	# vsftpd's built-in defaults (one privileged + one unprivileged process per
	# session, sendfile, no transfer log).
	cat >"$conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$DOCROOT
local_enable=NO
write_enable=NO
xferlog_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=$TMP/vsftpd-empty
EOF
	: >"$TMP/vsftpd.reaped"
	# the reap wrapper (not pinned; it only wakes when a process exits) runs
	# vsftpd pinned to the server CPU and accounts for the orphaned session processes
	spawn "$port" "$PY" "$FTPB" reap --log "$TMP/vsftpd.reaped" -- taskset -c "$SERVER_CPU" vsftpd "$conf" \
		>"$TMP/vsftpd.out" 2>&1
	MEASURE_PID=$SERVER_PID
	EXCLUDE_PIDS=$SERVER_PID
	REAPED=$TMP/vsftpd.reaped
	wait_ftp vsftpd "$TMP/vsftpd.out" || { stop_server; return 1; }
}

start_pyftpdlib() {
	local port
	port=$(free_port) || return 1
	# As a developer runs it: anonymous, read-only; its per-command log to a file.
	spawn "$port" taskset -c "$SERVER_CPU" "$PY" -m pyftpdlib -i 127.0.0.1 -p "$port" -d "$DOCROOT" \
		>"$TMP/pyftpdlib.log" 2>&1
	MEASURE_PID=$SERVER_PID
	EXCLUDE_PIDS=
	REAPED=
	wait_ftp pyftpdlib "$TMP/pyftpdlib.log" || { stop_server; return 1; }
}

# ftp_load NAME CASE KIND TIMEOUT [helper options --] CMD...
ftp_load() {
	local name=$1 case=$2 kind=$3 to=$4
	shift 4
	local opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	"$PY" "$FTPB" load --results "$RESULTS" --log "$LOADLOG" \
		--server "$name" --case "$case" --pid "$MEASURE_PID" --exclude "$EXCLUDE_PIDS" \
		${REAPED:+--reaped "$REAPED"} --kind "$kind" --timeout "$to" \
		--cpus "$SERVER_CPU,$CLIENT_CPU" "${opts[@]}" \
		-- taskset -c "$CLIENT_CPU" "$@"
}

# lftp_script DEST DEBUG: one session: log in (NOOP), time stamp, mirror, time stamp
lftp_script() {
	local dest=$1 f=$TMP/lftp.script
	cat >"$f" <<EOF
set net:timeout 10
set net:max-retries 1
set net:persist-retries 0
set cmd:fail-exit yes
open ftp://127.0.0.1:$SERVER_PORT
quote NOOP
!date +%s.%N
mirror /small $dest
!date +%s.%N
quit
EOF
	printf '%s\n' "$f"
}

# run_suite NAME: the measured cases against the running server
run_suite() {
	local name=$1 i dest script
	if [ "$name" != loopkit-s50 ]; then
		for i in $(seq "$RETR_RUNS"); do
			ftp_load "$name" "retr@$round.$i" curl 120 --bytes "$BIG_BYTES" -- \
				curl -s -o /dev/null --max-time 100 \
				-w '%{response_code} %{size_download} %{time_total} %{time_pretransfer} %{time_starttransfer}' \
				"ftp://127.0.0.1:$SERVER_PORT/big"
		done
	fi
	# unmeasured warm-up session with the debug log: which commands each server needed
	dest=$TMP/mirror/$name-warmup-$round
	script=$(lftp_script "$dest")
	taskset -c "$CLIENT_CPU" timeout 60 lftp -d -f "$script" >"$TMP/lftp-$name-$round.debug" 2>&1 ||
		warn "$name: the warm-up lftp session failed (see $TMP/lftp-$name-$round.debug with BENCH_KEEP=1)"
	log "  $(printf '%-11s %-9s' "$name" lftp-cmds) $(grep -- '---> ' "$TMP/lftp-$name-$round.debug" |
		awk '{print $2}' | sort | uniq -c | sort -rn | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')"
	rm -rf "$dest"
	for i in $(seq "$LFTP_RUNS"); do
		dest=$TMP/mirror/$name-$round-$i
		script=$(lftp_script "$dest")
		ftp_load "$name" "lftp@$round.$i" lftp 60 \
			--files "$NFILES" --src "$DOCROOT/small" --dst "$dest" -- \
			lftp -f "$script"
		rm -rf "$dest"
	done
	taskset -c "$CLIENT_CPU" timeout 180 "$PY" "$FTPB" greet --results "$RESULTS" --server "$name" \
		--port "$SERVER_PORT" --count "$GREET_N" --round "$round" --client-cpu "$CLIENT_CPU" ||
		warn "$name: the greeting test did not finish"
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		warn "$name is no longer running after the runs"
	fi
}

# start_server NAME: for run_rounds (lib.sh)
start_server() {
	local s=$1
	case $s in
	loopkit | loopkit-s50)
		if [ ! -x "$LOOPKIT" ]; then
			log "$s: not built ($LOOPKIT missing; run make)"
			return 1
		fi
		if [ "$s" = loopkit ]; then
			log "== loopkit ($("$LOOPKIT" --version 2>/dev/null | head -1)), default sniff window"
			start_ftp_loopkit
		else
			log "== loopkit --sniff-ms 50 (lftp and greeting only)"
			start_ftp_loopkit --sniff-ms 50
		fi
		;;
	base)
		if [ ! -x "$LOOPKIT_BASE" ]; then
			log "base: LOOPKIT_BASE names no binary ('$LOOPKIT_BASE')"
			return 1
		fi
		log "== base: $LOOPKIT_BASE, default sniff window"
		LK_BIN=$LOOPKIT_BASE start_ftp_loopkit
		;;
	vsftpd)
		[ "$have_vsftpd" = 1 ] || { log "vsftpd: not installed (apt-get install vsftpd)"; return 1; }
		log "== vsftpd (standalone, anonymous)"
		start_vsftpd
		;;
	pyftpdlib)
		[ "$have_pyftpdlib" = 1 ] || { log "pyftpdlib: not installed (apt-get install python3-pyftpdlib)"; return 1; }
		log "== pyftpdlib (python3 -m pyftpdlib)"
		start_pyftpdlib
		;;
	*)
		warn "unknown server '$s' in BENCH_FTP_SERVERS"
		return 1
		;;
	esac || { log "$s: did not start, skipped"; return 1; }
}

run_rounds
finish "$FTPB"
