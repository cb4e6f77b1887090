#!/bin/sh
# fuzz/run.sh - runs the libFuzzer targets in build-fuzz/: `run.sh fuzz SECS TARGET...`
# fuzzes each for SECS seconds and prints executions per target; `run.sh replay 0
# TARGET...` runs every input of fuzz/corpus/TARGET and fuzz/crashes/TARGET once.
# Exits non-zero when a target crashes; its log is printed.
set -u
cd "$(dirname "$0")/.."
mode=$1 secs=$2
shift 2
B=build-fuzz
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0:handle_abort=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1"
fail=0
[ "$mode" = fuzz ] && printf '%-20s %8s %12s %10s %8s\n' target seconds executions exec/s corpus
for t in "$@"; do
	name=${t#fuzz_}
	opts="-timeout=10 -rss_limit_mb=2048"
	[ -f "fuzz/dict/$name.dict" ] && opts="$opts -dict=fuzz/dict/$name.dict"
	case $name in
	http_request | chunked) opts="$opts -max_len=20000" ;; # heads up to HTTP_MAX_HEAD and past it
	esac
	mkdir -p "$B/logs"
	log=$B/logs/$t.$mode.log
	if [ "$mode" = replay ]; then
		# -runs=0: load (and so run) every input of the directories, then stop.
		"$B/$t" $opts -runs=0 "fuzz/corpus/$name" "fuzz/crashes/$name" >"$log" 2>&1
		rc=$?
		n=$(find "fuzz/corpus/$name" "fuzz/crashes/$name" -type f ! -name .keep | wc -l)
		if [ $rc -eq 0 ]; then
			echo "== $t: $n inputs replayed"
		fi
	else
		mkdir -p "$B/corpus/$name" "$B/crashes/$name"
		start=$(date +%s)
		"$B/$t" $opts -max_total_time="$secs" -print_final_stats=1 \
			-artifact_prefix="$B/crashes/$name/" "$B/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1
		rc=$?
		took=$(($(date +%s) - start))
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		corpus=$(find "$B/corpus/$name" -type f | wc -l)
		printf '%-20s %8s %12s %10s %8s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" "$corpus"
	fi
	if [ $rc -ne 0 ]; then
		echo "== $t FAILED (exit $rc); log $log:" >&2
		tail -n 60 "$log" >&2
		fail=1
	fi
done
exit $fail
