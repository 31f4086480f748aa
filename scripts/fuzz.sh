#!/usr/bin/env bash
# Runs ferronet's cargo-fuzz targets (fuzz/), one at a time, and fails on any crash, hang or
# leak.
#
#   scripts/fuzz.sh [SECONDS]   every target for SECONDS each (default 20; for CI), with
#                               AddressSanitizer and comparison tracing
#   scripts/fuzz.sh --long      every target for FUZZ_RUNS executions each (default
#                               10000000), or FUZZ_LONG_SECONDS if set; for throughput
#                               without AddressSanitizer nor comparison tracing (see below)
#   scripts/fuzz.sh --seed      regenerate the seed corpus fuzz/corpus/<target>/
#
# The long run is how the README's fuzzing figures were made, e.g.
#   FUZZ_TARGETS=frames_ethernet FUZZ_RUNS=10000000 nice -n 19 scripts/fuzz.sh --long
# It prints, per target, the executions, the average exec/s and libFuzzer's final coverage
# (cov: edges, ft: features); the full log is in fuzz/target/fuzz-<target>.log. Last round
# (the three targets at once, nice 19, on a shared 2-core machine): 10 million executions each,
#   frames_ethernet at 1,823 exec/s (cov: 5077, ft: 31916), frames_ip at 1,794 exec/s
#   (cov: 3798, ft: 23916), structured at 1,210 exec/s (cov: 5568, ft: 34793), no crash.
# One execution costs 0.3-0.8 ms of CPU: 10 million take one to three hours per target.
#
# Targets (harness: tests/src/fuzz.rs): frames_ethernet, frames_ip, structured; or set
# FUZZ_TARGETS="a b". The committed corpus fuzz/corpus/<target>/ is read, never written: new
# inputs go to fuzz/target/corpus-run/<target>/ (kept between runs; --long merges them back
# into fuzz/corpus only with FUZZ_MERGE=1). A crash is written to fuzz/artifacts/<target>/;
# replay it with `cargo +nightly fuzz run -a <target> <file>`, then add it to
# tests/tests/fuzz_regressions.rs.
#
# Needs the nightly toolchain and cargo-fuzz (scripts/setup.sh installs both). Without them
# it says SKIP, and fails when CI=true. One fuzzer runs at a time (one process, one job).
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=${FUZZ_TOOLCHAIN:-nightly}
targets=${FUZZ_TARGETS:-frames_ethernet frames_ip structured}
seconds=20
runs=
long=false
case "${1:-}" in
    --long)
        long=true
        seconds=${FUZZ_LONG_SECONDS:-}
        runs=${FUZZ_RUNS:-10000000}
        ;;
    --seed)
        rm -rf fuzz/corpus
        FERRONET_FUZZ_CORPUS="$PWD/fuzz/corpus" cargo test -q --release -p ferronet-integration \
            --test fuzz_regressions write_seed_corpus -- --ignored
        du -sh fuzz/corpus/*
        exit 0
        ;;
    "") ;;
    *[!0-9]*)
        echo "usage: $0 [SECONDS | --long | --seed]" >&2
        exit 2
        ;;
    *) seconds=$1 ;;
esac

skip() {
    if [ "${CI:-}" = true ]; then
        echo "fuzz: FAIL: $* (CI=true: fuzzing is required)" >&2
        exit 1
    fi
    echo "fuzz: SKIP: $* (run scripts/setup.sh)" >&2
    exit 0
}
cargo "+$toolchain" --version >/dev/null 2>&1 || skip "no $toolchain toolchain"
cargo "+$toolchain" fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not installed"

# -a: debug assertions and overflow checks (a panic there is a crash). The short runs use
# AddressSanitizer and comparison tracing (libFuzzer learns the constants the code compares
# with). The long run goes without both: about twice the executions per second (measured
# on the same corpus: same edges and features reached, half the time per execution; the
# unsafe code is checked by scripts/miri.sh), in its own build directory so that switching
# does not rebuild everything. FUZZ_SANITIZER (address, none, ...) and FUZZ_TRACE_COMPARES
# (1 or 0) override.
fuzz_flags=(-a)
if $long; then
    sanitizer=${FUZZ_SANITIZER:-none}
    trace_compares=${FUZZ_TRACE_COMPARES:-0}
    fuzz_flags+=(--target-dir target/long)
else
    sanitizer=${FUZZ_SANITIZER:-address}
    trace_compares=${FUZZ_TRACE_COMPARES:-1}
fi
fuzz_flags+=(-s "$sanitizer")
if [ "$trace_compares" = 0 ]; then fuzz_flags+=(--no-trace-compares); fi
if [ -n "$seconds" ]; then
    limit=(-max_total_time="$seconds")
    what="for ${seconds}s"
else
    limit=(-runs="$runs")
    what="for $runs executions"
fi
echo "fuzz: building the targets ($toolchain, debug assertions, sanitizer: $sanitizer," \
    "comparison tracing: $trace_compares)"
(cd fuzz && cargo "+$toolchain" fuzz build "${fuzz_flags[@]}")

failed=()
summary=()
for target in $targets; do
    run_corpus="fuzz/target/corpus-run/$target"
    mkdir -p "$run_corpus" "fuzz/artifacts/$target"
    log="fuzz/target/fuzz-$target.log"
    echo "fuzz: $target $what (log: $log)"
    status=0
    (cd fuzz && cargo "+$toolchain" fuzz run "${fuzz_flags[@]}" "$target" \
        "../$run_corpus" "corpus/$target" -- \
        "${limit[@]}" -max_len=4096 -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1) >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    line="$target: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-no coverage line}"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        line="$line: FAILED (exit $status)"
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written|Timeout|deadly signal' "$log" | head -20 >&2 || true
    fi
    echo "fuzz: $line"
    summary+=("$line")
    if $long && [ "${FUZZ_MERGE:-}" = 1 ] && [ "$status" -eq 0 ]; then
        # Adds to the committed corpus only the inputs that bring new coverage.
        (cd fuzz && cargo "+$toolchain" fuzz run "${fuzz_flags[@]}" "$target" \
            "corpus/$target" "../$run_corpus" -- -merge=1 -max_len=4096) >>"$log" 2>&1 || true
    fi
done

printf '\nfuzz summary:\n'
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (crash inputs in fuzz/artifacts/)" >&2
    exit 1
fi
