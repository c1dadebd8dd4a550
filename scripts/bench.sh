#!/usr/bin/env bash
# Side-by-side benchmark: builds the release binary and runs the shared harness (../shared/bench)
# with pixelguard beside unbound (local-zone and RPZ) and dnsmasq, at 100k and 1M names, then
# writes BENCHMARKS.md (date, machine, peer versions, the harness's tables). The harness's answer
# check stays on: a fast wrong answer does not count. All traffic stays on 127.0.0.1.
#
#   scripts/bench.sh                         # 100k and 1M, all peers (about 10 minutes)
#   SIZES=100000 scripts/bench.sh --peers unbound --repeats 1
#
# Extra arguments go to the harness (see ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-../shared/bench}
SIZES=${SIZES:-100000,1000000}
OUT=${OUT:-BENCHMARKS.md}

# Refuses a dirty tree (figures must describe committed code); sets rev, bin and work.
. scripts/bench-prelude.sh
trap 'rm -rf "$work"' EXIT
bash "$BENCH/run_peers.sh" --sizes "$SIZES" --name pixelguard \
    --start-cmd "$bin run --listen {addr} --upstream {upstream} --block {blocklist}" \
    --json "$work/bench.json" --markdown "$work/bench.md" "$@"

{
    echo "# Benchmarks"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`scripts/bench.sh\` (the shared harness, pixelguard beside its peers in one invocation)."
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); shared with other work, so compare servers within one run and prefer kQ/CPU-s."
    echo "pixelguard $rev, release build; command line: \`pixelguard run --listen ADDR --upstream ADDR --block LIST\`."
    echo
    cat "$work/bench.md"
} >"$OUT"
echo "wrote $OUT"
