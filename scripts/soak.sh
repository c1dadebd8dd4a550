#!/usr/bin/env bash
# Soak test (not part of CI): dnsperf load through pixelguard for DURATION seconds while the
# config is reloaded every RELOAD_EVERY seconds and the upstream is frozen (SIGSTOP) for
# FREEZE seconds half-way, then thawed. Reports queries sent / answered / lost, and pixelguard's
# RSS at start, at the end and at peak. Loopback only; bounded by DURATION and QPS.
#
#   scripts/soak.sh                       # 60 s at up to 20k qps
#   DURATION=600 QPS=30000 scripts/soak.sh
#
# Needs: nsd unbound dnsmasq-base dnsperf bind9-dnsutils (apt), and ../shared/testbed.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
QPS=${QPS:-20000}
RELOAD_EVERY=${RELOAD_EVERY:-5}
FREEZE=${FREEZE:-10}
PORT=${PORT:-15353}
TESTBED=${TESTBED:-../shared/testbed}
export XT_RUN=${XT_RUN:-$(mktemp -d)}

cargo build --release --locked -q
bash "$TESTBED/testbed.sh" start >/dev/null
work=$(mktemp -d)
pg_pid=""
cleanup() {
    [ -n "$pg_pid" ] && kill "$pg_pid" 2>/dev/null || true
    [ -f "$XT_RUN/nsd.pid" ] && kill -CONT "$(cat "$XT_RUN/nsd.pid")" 2>/dev/null || true
    bash "$TESTBED/testbed.sh" stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

printf 'tracker.example.test\nads.example.test\n' >"$work/block.txt"
cat >"$work/pixelguard.toml" <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
[upstream]
servers = ["127.0.0.1:15300", "127.0.0.1:15301"]
timeout = "500ms"
deadline = "1500ms"
[admin]
listen = ""
[lists.trackers]
source = "builtin:trackers"
[lists.local]
source = "block.txt"
[zones.lo]
networks = ["127.0.0.0/8"]
block = ["trackers", "local"]
rate_limit = { qps = 0 }
TOML
# Queries: the testbed's names, blocked names, and tracker names.
{
    cat "$TESTBED/queries.txt"
    for i in $(seq 1 50); do echo "x$i.tracker.example.test A"; echo "connect.facebook.net A"; echo "www.google-analytics.com AAAA"; done
} >"$work/queries.txt"

target/release/pixelguard run --config "$work/pixelguard.toml" 2>"$work/pixelguard.log" &
pg_pid=$!
for _ in $(seq 1 50); do dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 www.example.test +short >/dev/null 2>&1 && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pg_pid/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$pg_pid/status"; }
rss_start=$(rss)

dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" -l "$DURATION" -Q "$QPS" -c 8 -t 2 >"$work/dnsperf.txt" 2>&1 &
perf_pid=$!
start=$(date +%s)
frozen=0
reloads=0
while kill -0 "$perf_pid" 2>/dev/null; do
    sleep "$RELOAD_EVERY"
    kill -HUP "$pg_pid" && reloads=$((reloads + 1))
    now=$(( $(date +%s) - start ))
    if [ "$frozen" -eq 0 ] && [ "$now" -ge $((DURATION / 2)) ]; then
        kill -STOP "$(cat "$XT_RUN/nsd.pid")"; frozen=1
        sleep "$FREEZE"
        kill -CONT "$(cat "$XT_RUN/nsd.pid")"
    fi
done
wait "$perf_pid" || true
rss_end=$(rss)
rss_peak=$(hwm)
sent=$(awk '/Queries sent:/ {print $3}' "$work/dnsperf.txt")
done_=$(awk '/Queries completed:/ {print $3}' "$work/dnsperf.txt")
lost=$(awk '/Queries lost:/ {print $3}' "$work/dnsperf.txt")
echo "soak: ${DURATION}s at up to ${QPS} qps; ${reloads} reloads; upstream frozen ${FREEZE}s half-way"
echo "queries sent ${sent}, answered ${done_}, lost ${lost}"
grep -E "Response codes" "$work/dnsperf.txt" || true
echo "RSS start $((rss_start / 1024)) MiB, end $((rss_end / 1024)) MiB, peak $((rss_peak / 1024)) MiB"
grep -c "reload failed" "$work/pixelguard.log" | sed 's/^/failed reloads: /'
