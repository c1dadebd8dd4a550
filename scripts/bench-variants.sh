#!/usr/bin/env bash
# What a feature costs the DNS path, measured in the shared harness (../shared/bench): pixelguard
# with one feature on, pixelguard with none, and the `ceiling` peer (the bare-UDP limit), all in
# ONE harness run (scripts/bench_variants.py adds each variant as a server of that run: started,
# pinned to CPU 0, answer-checked and measured by the harness's own code). Every variant loads
# the same list and forwards to the harness's upstream; every figure is queries per CPU-second
# of the whole process, so the sinks' writer threads count.
#
#   scripts/bench-variants.sh                      # the variants below, 100k names
#   VARIANTS="dnstap syslog" scripts/bench-variants.sh --repeats 5
#
# Variants (each config turns on one feature; the admin server is off in all but `dashboard`, so
# that the instances can run side by side and each figure isolates its feature):
#   querylog   [query_log], record = "policy" (the reference the export sinks are held to)
#   dnstap     [dnstap] into fstrm_capture (Debian fstrm-bin) on a Unix socket, record = "policy"
#   syslog     [syslog] over UDP to a loopback receiver that reads and discards (RFC 5426: one
#              datagram per event, so one sendto per event)
#   syslog-tcp [syslog] over TCP (octet counting, many events per write) to a loopback receiver
#              that reads and discards
#   dashboard  [admin] on, with the dashboard's time series
#
# Extra arguments go to the harness. A dirty tree is refused (figures must describe a commit).
# All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH=${BENCH:-../shared/bench}
SIZE=${SIZE:-100000}
VARIANTS=${VARIANTS:-querylog dnstap syslog dashboard}
BASE_PORT=${BASE_PORT:-5320}

# Refuses a dirty tree (figures must describe committed code); sets rev, bin and work.
. scripts/bench-prelude.sh
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

syslog_port=$((BASE_PORT + 19))
noadmin=$'[admin]\nlisten = ""'
printf '%s\n' "$noadmin" >"$work/none.toml"
printf '%s\n[query_log]\npath = "%s"\nrecord = "policy"\n' "$noadmin" "$work/queries.jsonl" >"$work/querylog.toml"
printf '%s\n[dnstap]\nsocket = "%s"\nrecord = "policy"\n' "$noadmin" "$work/dnstap.sock" >"$work/dnstap.toml"
printf '%s\n[syslog]\nserver = "udp://127.0.0.1:%s"\n' "$noadmin" "$syslog_port" >"$work/syslog.toml"
printf '%s\n[syslog]\nserver = "tcp://127.0.0.1:%s"\n' "$noadmin" "$((BASE_PORT + 17))" >"$work/syslog-tcp.toml"
printf '[admin]\nlisten = "127.0.0.1:%s"\n' "$((BASE_PORT + 18))" >"$work/dashboard.toml"

# The receivers read everything they are sent, as a collector would.
start_receivers() { # VARIANT
    case "$1" in
        dnstap)
            command -v fstrm_capture >/dev/null ||
                { echo "bench-variants.sh: fstrm_capture is missing (Debian fstrm-bin)" >&2; exit 1; }
            fstrm_capture -t protobuf:dnstap.Dnstap -u "$work/dnstap.sock" -w "$work/capture.fstrm" \
                >/dev/null 2>&1 &
            pids+=($!) ;;
        syslog)
            python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recv(65536)
' "$syslog_port" &
            pids+=($!) ;;
        syslog-tcp)
            python3 -c '
import socket, sys, threading
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(8)
def drain(c):
    while c.recv(1 << 20):
        pass
while True:
    c, _ = l.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
' "$((BASE_PORT + 17))" &
            pids+=($!) ;;
    esac
}

cmd="$bin run --listen {addr} --upstream {upstream} --block {blocklist} --config"
args=(--variant "none=$cmd $work/none.toml")
for v in $VARIANTS; do
    start_receivers "$v"
    args+=(--variant "$v=$cmd $work/$v.toml")
done
python3 scripts/bench_variants.py --sizes "$SIZE" --peers ceiling --base-port "$BASE_PORT" \
    --json "$work/run.json" "${args[@]}" "$@" >&2

python3 - "$rev" "$work/run.json" $VARIANTS <<'PY'
import json, sys
rev, path, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = json.load(open(path))["results"]
by = {(r["peer"], r["scenario"]): r for r in rows}
print("Measured at %s with scripts/bench-variants.sh: one run of the shared harness, every "
      "variant and the ceiling peer in it." % rev)
print()
print("| feature | scenario | kQ/CPU-s with it | with none | ratio | of ceiling (with / none) |")
print("|---|---|---|---|---|---|")
for v in variants:
    for scen in ("hit", "blocked", "mixed"):
        w, b = by.get((v, scen)), by.get(("none", scen))
        qw = w and w.get("q_per_cpu_s_median")
        qb = b and b.get("q_per_cpu_s_median")
        if not qw or not qb:
            print("| %s | %s | missing | | | |" % (v, scen))
            continue
        print("| %s | %s | %.1f | %.1f | %.2f | %.2f / %.2f |" % (
            v, scen, qw / 1000, qb / 1000, qw / qb,
            w.get("of_ceiling") or 0, b.get("of_ceiling") or 0))
PY
