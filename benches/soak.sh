#!/usr/bin/env bash
# Soak: one long run at a constant rate against `ratebench serve` on loopback, the target
# pinned to one core and the generator to the other. Every minute it prints the generator's
# resident memory and what it sent and completed in that minute (read from the interval log,
# which ratebench flushes once a second); at the end, the run's accounting from its JSON.
#
#   bash benches/soak.sh                      # 1 h at 10k req/s
#   DURATION=10m RATE=10k bash benches/soak.sh
#
# Constant memory means the RSS column stays flat after the first minute; an exact rate
# means every full minute sends RATE × 60; exact accounting means the final line balances.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-1h}
RATE=${RATE:-10k}
CONNS=${CONNS:-100}
PORT=${PORT:-18098}
TARGET_CORE=${TARGET_CORE:-1}
GEN_CORE=${GEN_CORE:-0}

cargo build --release -q
RB=target/release/ratebench
tmp=$(mktemp -d)

taskset -c "$TARGET_CORE" "$RB" serve --addr "127.0.0.1:$PORT" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; kill $GEN 2>/dev/null || true' EXIT
sleep 0.5

taskset -c "$GEN_CORE" "$RB" -R"$RATE" -c"$CONNS" -t1 -d"$DURATION" \
    --hdr-log "$tmp/soak.hlog" --json "$tmp/soak.json" "http://127.0.0.1:$PORT/" \
    >"$tmp/report.txt" 2>&1 &
GEN=$!

echo "soak: -R$RATE -c$CONNS -t1 -d$DURATION (generator pid $GEN); files in $tmp"
printf '%8s %10s %12s %12s %12s\n' minute rss_mb sent completed sent_per_s
minute=0
while kill -0 "$GEN" 2>/dev/null; do
    sleep 60 &
    wait $! || true
    kill -0 "$GEN" 2>/dev/null || break
    minute=$((minute + 1))
    rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$GEN/status" 2>/dev/null || echo "?")
    # Seconds [60(m-1), 60m) of the per-second counters written so far.
    read -r sent completed < <(grep -o '^#\[ratebench-counts {.*}\]' "$tmp/soak.hlog" |
        sed 's/^#\[ratebench-counts //; s/\]$//' |
        python3 -c '
import json, sys
m = int(sys.argv[1])
sent = completed = 0
for line in sys.stdin:
    d = json.loads(line)
    if 60 * (m - 1) <= d["second"] < 60 * m:
        sent += d["sent"]; completed += d["completed"]
print(sent, completed)' "$minute")
    printf '%8d %10s %12d %12d %12.1f\n' "$minute" "$rss" "$sent" "$completed" "$(awk -v s="$sent" 'BEGIN { print s / 60 }')"
done
wait "$GEN" || true
python3 - "$tmp/soak.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
a = d["accounting"]
ok = a["scheduled"] == a["completed"] + a["errors"] + a["unfinished"]
print(f'accounting: scheduled {a["scheduled"]} = completed {a["completed"]} + errors {a["errors"]}'
      f' + unfinished {a["unfinished"]}: {"exact" if ok else "MISMATCH"}')
print(f'rate: target {d["rates"]["target_per_s"]:.1f}/s, achieved {d["rates"]["achieved_per_s"]:.2f}/s;'
      f' corrected p99 {d["latency_ms"]["corrected"]["p99"]} ms, send lag p99 {d["latency_ms"]["send_lag"]["p99"]} ms')
print("warnings:", d["warnings"] or "none")
PY
