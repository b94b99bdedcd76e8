# shellcheck shell=bash
# shellcheck disable=SC2154 # name, secs, here, src: set by the caller
# test/fuzz/fuzz-lib.sh: what every run-NAME-fuzz shares. Sourced after
# the script set name (the target: corpus/$name, fuzz_$name), secs, here
# (test/fuzz) and src (the source tree).
#
# The seeds are the kept corpus, test/fuzz/corpus/$name (small, in git),
# copied to a working corpus in $out so that the run never writes into
# the repository. FUZZ_DIR keeps the build, corpus, log and artifacts
# (default: a temp dir, removed when nothing broke).

out=${FUZZ_DIR:-$(mktemp -d "/tmp/vmenv-fuzz-$name.XXXXXX")}
mkdir -p "$out/corpus"
cp -t "$out/corpus" "$here/corpus/$name"/*

command -v clang >/dev/null || {
	echo "run-$name-fuzz: clang not installed" >&2
	exit 1
}

# fuzz_cc ARGS...: clang with the fuzzer's flags, to $out/fuzz_$name.
fuzz_cc() {
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"$@" -o "$out/fuzz_$name"
}

# The one line every run ends with:
#   run-NAME-fuzz: NAME SECS s, EXECS execs, cov COV ft FT, crashes N
fuzz_summary() { # rc
	local execs cov ft crashes last
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
	last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$out/fuzz.log" | tail -1 || true)
	[ -n "$execs" ] || execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
	cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
	ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
	crashes=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
	[ "$1" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes=1
	echo "run-$name-fuzz: $name $secs s, ${execs:-0} execs, cov ${cov:-?} ft ${ft:-?}, crashes $crashes"
}

# fuzz_run ARGS...: runs $out/fuzz_$name for $secs s on the working
# corpus with ARGS (-max_len, -dict...) and the common limits; prints the
# summary line. Exit 0 when nothing broke; 1 with the crashing input's
# path and the log's tail otherwise.
fuzz_run() {
	local rc
	echo "run-$name-fuzz: fuzzing for $secs s in $out"
	set +e
	"$out/fuzz_$name" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
		-rss_limit_mb=2048 -artifact_prefix="$out/" \
		-print_final_stats=1 "$@" "$out/corpus" >"$out/fuzz.log" 2>&1
	rc=$?
	set -e
	fuzz_summary "$rc"
	if [ "$rc" -ne 0 ]; then
		echo "run-$name-fuzz: FAILED (rc $rc); log: $out/fuzz.log"
		ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null || true
		tail -40 "$out/fuzz.log"
		exit 1
	fi
	[ -n "${FUZZ_DIR:-}" ] || rm -rf "$out"
}
