# shellcheck shell=bash
# bench/peers.sh - what bench/bench-*.sh share, sourced after `set -euo pipefail`:
# the repository root as the working directory, python, bench/lib.sh (servers started
# and stopped by pid), the loopkit binary (built when missing), a temporary directory
# and the cleanup of both on exit.  need TOOL... exits 1 naming a missing peer.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
BENCH_DIR=$PWD/bench
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
LOOPKIT=$(realpath "${LOOPKIT:-./loopkit}")
[ -x "$LOOPKIT" ] || make -s
TMP=$(mktemp -d)
# lib.sh is written for scripts without set -e: its waits may return a signal status
trap 'stop_all || true; rm -rf "$TMP"' EXIT

need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "$(basename "$0"): $t missing (scripts/deps)" >&2; exit 1; }
	done
}
