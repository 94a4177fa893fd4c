#!/usr/bin/env bash
# Wall time and peak RSS of `wardwatch-agent discover --onvif` against the camera simulator,
# in a network namespace of its own (WS-Discovery multicast never leaves it; needs root and
# iproute2). The wrong password is tried first, so every camera is asked twice.
#
#   bash bench/discover_onvif.sh [CAMERAS] [RUNS]      (default 50 cameras, 5 runs)
#   AGENT=/tmp/venv/bin/wardwatch-agent bash bench/discover_onvif.sh   (an installed wheel)
#
# Prints one line per run and the medians. The probe's own wait (--onvif-wait 1) is part of
# every run's wall time; "asking" is the time from the probe's end to the last answer.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50} runs=${2:-5}
agent=${AGENT:-.venv/bin/wardwatch-agent}  # AGENT=/path/to/venv/bin/wardwatch-agent: another install
ns="ww-bench-$$"
tmp=$(mktemp -d)
sim=""
cleanup() {
    [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip link set lo multicast on
ip netns exec "$ns" ip route add 224.0.0.0/4 dev lo
ip netns exec "$ns" .venv/bin/wardwatch-sim cameras --count "$n" --brand mix --password Cam12345 \
    --discovery-interface 127.0.0.1 --control-port 0 >"$tmp/sim.json" 2>"$tmp/sim.err" &
sim=$!
for _ in $(seq 100); do [ -s "$tmp/sim.json" ] && break; sleep 0.1; done
[ -s "$tmp/sim.json" ] || { cat "$tmp/sim.err" >&2; exit 1; }
cat >"$tmp/agent.yaml" <<YAML
agent: {id: bench, ward: bench}
outbox: {path: $tmp/outbox.db}
auth:
  old-pass: {onvif: {username: admin, password: not-it}}
  cam-admin: {onvif: {username: admin, password: Cam12345}}
devices: []
YAML
walls=() rsss=() asks=()
for i in $(seq "$runs"); do
    ip netns exec "$ns" /usr/bin/time -f "%e %M" -o "$tmp/time" "$agent" discover \
        -c "$tmp/agent.yaml" -o "$tmp/found.yaml" --onvif --onvif-wait 1 --auth old-pass --auth cam-admin \
        --timeout 2 2> >(while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done >"$tmp/err")
    sleep 0.2
    read -r wall rss <"$tmp/time"
    found=$(grep -c "auth: cam-admin" "$tmp/found.yaml" || true)
    probed=$(grep -m1 "ws-discovery: .* cameras (" "$tmp/err" | cut -d' ' -f1)
    last=$(grep "cameras asked" "$tmp/err" | tail -1 | cut -d' ' -f1)
    ask=$(python3 -c "print(f'{$last - $probed:.2f}')")
    echo "run $i: wall ${wall}s, asking ${ask}s, peak RSS $((rss / 1024)) MB, $found/$n cameras with cam-admin"
    walls+=("$wall") rsss+=("$rss") asks+=("$ask")
done
python3 - "${walls[*]}" "${asks[*]}" "${rsss[*]}" <<'PY'
import statistics, sys
w, a, r = ([float(x) for x in s.split()] for s in sys.argv[1:])
print(f"median: wall {statistics.median(w):.2f}s, asking {statistics.median(a):.2f}s, "
      f"peak RSS {statistics.median(r) / 1024:.0f} MB")
PY
