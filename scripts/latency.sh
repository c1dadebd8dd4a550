#!/usr/bin/env bash
# Latency at a fixed rate, repeated: pixelguard beside Unbound in the shared harness
# (../shared/bench), RUNS separate invocations (default 5), each measuring p50/p99 at RATE
# queries per second (default 10000) for DURATION seconds per scenario; prints every run and the
# median of the runs. One 3 s latency run is too noisy on a shared machine to compare p99s; five
# runs of each server, interleaved, are not. A dirty tree is refused (figures describe a commit).
# All traffic stays on 127.0.0.1.
#
#   scripts/latency.sh                     # 5 runs, 10k qps, 100k names, hit/blocked/mixed
#   RUNS=3 RATE=20000 scripts/latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-../shared/bench}
RUNS=${RUNS:-5}
RATE=${RATE:-10000}
DURATION=${DURATION:-3}
SIZE=${SIZE:-100000}
# Refuses a dirty tree (figures must describe committed code); sets rev, bin and work.
. scripts/bench-prelude.sh
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$RUNS"); do
    echo "latency.sh: run $i of $RUNS" >&2
    bash "$BENCH/run_peers.sh" --sizes "$SIZE" --name pixelguard --peers unbound \
        --start-cmd "$bin run --listen {addr} --upstream {upstream} --block {blocklist}" \
        --repeats 1 --duration 1 --latency-qps "$RATE" --latency-duration "$DURATION" \
        --json "$work/run$i.json" >/dev/null
done
python3 - "$rev" "$RATE" "$work"/run*.json <<'PY'
import json, statistics, sys
rev, rate, files = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {}
for f in files:
    for r in json.load(open(f))["results"]:
        if "p99_ms" in r:
            runs.setdefault((r["scenario"], r["peer"]), []).append((r["p50_ms"], r["p99_ms"]))
print(f"pixelguard {rev}: p50 / p99 in ms at {rate} qps, {len(files)} runs (each run: p50/p99)\n")
print("| scenario | server | runs | median p50 | median p99 | p99 vs unbound |")
print("|---|---|---|---|---|---|")
for scen in ("hit", "blocked", "mixed"):
    ub = runs.get((scen, "unbound"))
    for peer in ("pixelguard", "unbound"):
        v = runs.get((scen, peer))
        if not v:
            continue
        p50 = statistics.median(x[0] for x in v)
        p99 = statistics.median(x[1] for x in v)
        vs = p99 / statistics.median(x[1] for x in ub) if ub else float("nan")
        each = " ".join(f"{a:.3f}/{b:.3f}" for a, b in v)
        print(f"| {scen} | {peer} | {each} | {p50:.3f} | {p99:.3f} | {vs:.2f}x |")
PY
