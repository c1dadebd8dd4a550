#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (wire, lists, config; README "Fuzzing") for a bounded
# time each and fails on any crash. For each target: first the committed regression inputs
# (fuzz/regressions/TARGET/, each once), then libFuzzer for FUZZ_SECONDS (default 30) with a
# fresh temporary directory as the writable corpus and fuzz/corpus/TARGET/ as a read-only seed
# directory (libFuzzer writes new inputs to the first directory only), so a CI run never changes
# the tree. Prints the executions per target. A crashing input lands in fuzz/artifacts/TARGET/
# and the script exits 1 naming it.
#
# Stable Rust: cargo-fuzz passes -Z flags, which RUSTC_BOOTSTRAP=1 allows. `-s none`: the crate
# has no unsafe code (unsafe_code = "deny"), so AddressSanitizer would cost build time and speed
# for little; `-a` keeps debug assertions (overflow checks) on, as in the test builds.
# cargo-fuzz is installed from crates.io (`cargo install cargo-fuzz --locked`) when missing;
# libFuzzer itself is built from source by libfuzzer-sys and needs a C++ compiler (.ci/run
# installs Debian's g++ when c++ is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-30}"
targets=(wire lists config)
flags=(--sanitizer none --debug-assertions)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-check: cargo-fuzz is missing: installing it from crates.io"
    timeout 900 cargo install cargo-fuzz --locked
fi
started=$(date +%s)
(cd fuzz && timeout 1200 cargo fuzz build "${flags[@]}")
built=$(date +%s)
echo "fuzz-check: targets built in $((built - started)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    regressions=()
    if [ -d "fuzz/regressions/$t" ]; then
        regressions=("fuzz/regressions/$t"/*)
    fi
    if [ "${#regressions[@]}" -gt 0 ] &&
        ! (cd fuzz && timeout 300 cargo fuzz run "${flags[@]}" "$t" "${regressions[@]#fuzz/}") >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "FAIL  fuzz target $t: a committed regression input crashes it again" >&2
        failed=1
        continue
    fi
    # -timeout: an input that takes 10 s is a finding too; the outer timeout bounds a stuck run.
    if (cd fuzz && timeout $((seconds + 120)) cargo fuzz run "${flags[@]}" "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1) >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        found=$(find "$work/$t" -type f | wc -l)
        summary+=("$(printf '%-7s %10s executions in %s s, no crash (%s new corpus inputs)' "$t" "${runs:-?}" "$seconds" "$found")")
    else
        tail -n 60 "$log" >&2
        echo "FAIL  fuzz target $t crashed; the input is in fuzz/artifacts/$t/" \
            "(reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $t artifacts/$t/FILE, in fuzz/)" >&2
        failed=1
    fi
done
for line in "${summary[@]}"; do
    echo "ok    fuzz $line"
done
echo "fuzz-check: took $(($(date +%s) - started)) s in all"
exit "$failed"
