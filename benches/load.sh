#!/usr/bin/env bash
# Load benchmark: ratebench beside wrk (Debian's package, closed loop), oha (crates.io,
# open loop with --latency-correction) and wrk2 (open loop; not packaged: set WRK2 to a
# binary built from github.com/giltene/wrk2 with `make`) against the same loopback target,
# the target pinned to one core and the generator to the other. Prints CPU µs per request,
# achieved rate, reported p50/p99, peak memory, system calls and wake-ups (voluntary context
# switches) per request, and for ratebench its busy share and send lag p99, side by side.
#
#   bash benches/load.sh              # the standard set (~2 minutes)
#   SWEEP=1 bash benches/load.sh      # also the highest rate ratebench holds within 1 %
#   MEMORY=1 bash benches/load.sh     # also peak memory after 15 s and 60 s at 10k/s
#   ONLY=script bash benches/load.sh  # only the scripting rows (also: ONLY=stream, ONLY=http2)
#   DUR=5 bash benches/load.sh        # seconds per run (default 10)
#   RB=/tmp/old/ratebench bash benches/load.sh  # another build (for an A/B)
#
# Missing tools are installed when possible (apt-get install wrk; cargo install oha) and
# skipped otherwise. Nothing leaves 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/.."

TARGET_CORE=${TARGET_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
PORT=${PORT:-18099}
URL="http://127.0.0.1:$PORT/"
DUR=${DUR:-10}

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || true; }
command -v h2load >/dev/null || { apt-get install -y -qq nghttp2-client >/dev/null 2>&1 || true; }
command -v oha >/dev/null || [ -x "$HOME/.cargo/bin/oha" ] || cargo install oha --locked >/dev/null 2>&1 || true
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
[ -x "$OHA" ] || OHA=""
command -v wrk >/dev/null && WRK=wrk || WRK=""
WRK2=${WRK2:-/tmp/wrk2/wrk}
[ -x "$WRK2" ] || WRK2=""
# System calls per request from perf's raw_syscalls tracepoint, when perf may use it.
PERF=""
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true 2>/dev/null; then
    PERF=perf
fi

# RB=/path/to/ratebench measures another build (an A/B against this one), built by you.
if [ -z "${RB:-}" ]; then
    cargo build --release -q || exit 1
    RB=target/release/ratebench
fi

taskset -c "$TARGET_CORE" "$RB" serve --addr "127.0.0.1:$PORT" --body-size 100 >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
sleep 0.5

tmp=$(mktemp -d)
# Runs a command pinned to the generator core under /usr/bin/time; leaves its stdout in
# $tmp/out and "elapsed user sys maxrss_kb" in $tmp/time.
measure() {
    rm -f "$tmp/perf"
    if [ -n "$PERF" ]; then
        perf stat -e raw_syscalls:sys_enter -x, -o "$tmp/perf" \
            taskset -c "$GEN_CORE" /usr/bin/time -f "%e %U %S %M %w" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"
    else
        taskset -c "$GEN_CORE" /usr/bin/time -f "%e %U %S %M %w" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"
    fi
}
# System calls and wake-ups (voluntary context switches: each sleep that ended) per request.
per_req() { # requests
    local sc="-"
    [ -f "$tmp/perf" ] && sc=$(awk -F, -v n="$1" '/raw_syscalls/ { printf "%.2f", $1 / n }' "$tmp/perf")
    printf "%s %s" "$sc" "$(awk -v n="$1" '{ printf "%.2f", $5 / n }' "$tmp/time")"
}
cpu_us_per_req() { # requests
    awk -v n="$1" '{ printf "%.1f", ($2 + $3) * 1e6 / n }' "$tmp/time"
}
rss_mb() { awk '{ printf "%.1f", $4 / 1024 }' "$tmp/time"; }
to_ms() { # wrk-style duration (123.00us, 1.23ms, 1.2s) -> ms
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

# The machine's own timer floor on the generator core (a C loop, no ratebench): send lag
# and low-rate latencies cannot be better than this here. With liburing (Debian:
# liburing-dev, installed when possible) also the send floor: 10k sends a second on one
# connection to the same target, each one's lateness by its kernel TX stamp — a thread
# sleeping to each due time (`lazy`), and io_uring linked timeouts with the thread asleep in
# epoll_wait as a tokio worker is (plain, COOP_TASKRUN, DEFER_TASKRUN) or in io_uring_enter.
[ -e /usr/include/liburing.h ] || apt-get install -y -qq liburing-dev >/dev/null 2>&1 || true
if gcc -O2 -DURING -o "$tmp/wake_floor" benches/wake_floor.c -luring 2>/dev/null; then
    URING_FLOOR=1
elif gcc -O2 -o "$tmp/wake_floor" benches/wake_floor.c 2>/dev/null; then
    URING_FLOOR=""
fi
if [ -x "$tmp/wake_floor" ]; then
    echo
    echo "timer floor (benches/wake_floor.c, generator core, ${DUR} s):"
    taskset -c "$GEN_CORE" "$tmp/wake_floor" "$DUR"
    echo "send floor (benches/wake_floor.c, one connection to the target, 10k/s, ${DUR} s):"
    modes="lazy"
    [ -n "$URING_FLOOR" ] && modes="$modes uring-epoll uring-epoll-coop uring-epoll-defer uring-enter uring-enter-defer"
    for m in $modes; do
        taskset -c "$GEN_CORE" "$tmp/wake_floor" "$DUR" "$m" "$PORT" 10000
    done
fi
# The issue's yardstick: ../shared/tools/pace_floor.c (lazy, and io_uring linked timeouts
# with DEFER_TASKRUN), when it is there and builds.
PACE_FLOOR=../shared/tools/pace_floor.c
if [ -f "$PACE_FLOOR" ] && gcc -O2 -o "$tmp/pace_floor" "$PACE_FLOOR" -luring 2>/dev/null; then
    echo "pace floor (../shared/tools/pace_floor.c MODE 10000 ${DUR} PORT, generator core):"
    for m in lazy uring-defer; do
        echo "  $m: $(taskset -c "$GEN_CORE" "$tmp/pace_floor" "$m" 10000 "$DUR" "$PORT" 2>&1 | tr '\n' ' ')"
    done
fi

row() { printf "%-44s %10s %11s %9s %9s %7s %8s %8s %5s %17s %9s\n" "$@"; }
echo
row "run" "cpu us/req" "achieved/s" "p50 ms" "p99 ms" "peak MB" "sys/req" "wake/req" "busy" "lag p50/99" "read p99"
row "---" "----------" "----------" "------" "------" "-------" "-------" "--------" "----" "----------" "--------"

ratebench_run() { # label rate conns extra-args...
    local label=$1 rate=$2 conns=$3; shift 3
    measure "$RB" -R"$rate" -c"$conns" -t1 -d"${DUR}s" "$@" "$URL"
    local done p50 p99 ach busy lag read
    done=$(awk '/^Accounting:/ { print $6 }' "$tmp/out")
    ach=$(awk '/achieved \(sent\)/ { print $7 }' "$tmp/out")
    p50=$(to_ms "$(awk '/ 50.000%/ { print $2 }' "$tmp/out")")
    p99=$(to_ms "$(awk '/ 99.000%/ { print $2 }' "$tmp/out")")
    busy=$(grep -oE 'threads busy [0-9]+%' "$tmp/out" | awk '{ print $3 }')
    lag=$(awk '/^Send lag:/ { gsub(",", "", $4); gsub(",", "", $6); print $4 "/" $6 }' "$tmp/out")
    read=$(awk '/^Read lag: p50/ { gsub(",", "", $6); print $6 }' "$tmp/out")
    # shellcheck disable=SC2046
    row "$label" "$(cpu_us_per_req "$done")" "$ach" "$p50" "$p99" "$(rss_mb)" $(per_req "$done") "$busy" "$lag" "${read:--}"
    grep WARNING "$tmp/out" | sed 's/^/    /'
}

oha_run() { # label rate conns [extra oha args…]
    local label=$1 rate=$2 conns=$3; shift 3
    [ -n "$OHA" ] || { row "$label" "(oha not installed)" "" "" "" ""; return; }
    measure "$OHA" -z "${DUR}s" -q "$rate" -c "$conns" "$@" --latency-correction --no-tui --output-format json "$URL"
    python3 - "$tmp/out" "$tmp/time" "$label" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
e, u, s, m, w = open(sys.argv[2]).read().split()
n = sum(j.get("statusCodeDistribution", {}).values())
p = j["latencyPercentiles"]
print("%-44s %10.1f %11.1f %9.3f %9.3f %7.1f" % (sys.argv[3], (float(u) + float(s)) * 1e6 / max(n, 1),
      j["summary"]["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3, int(m) / 1024), end=" ")
n = max(n, 1)
sc = "-"
try:
    for line in open(sys.argv[2].replace("time", "perf")):
        if "raw_syscalls" in line:
            sc = "%.2f" % (float(line.split(",")[0]) / n)
except OSError:
    pass
print("%8s %8.2f %5s %9s %9s" % (sc, int(w) / n, "-", "-", "-"))
PY
}

# A row from wrk's or wrk2's output in $tmp/out (wrk prints "50%", wrk2 "50.000%").
wrk_row() { # label percentile-suffix
    local label=$1 suffix=$2 n rps p50 p99
    n=$(awk '/requests in/ { print $1 }' "$tmp/out")
    rps=$(awk '/^Requests\/sec/ { print $2 }' "$tmp/out")
    p50=$(to_ms "$(awk -v p="50$suffix" '$1 == p { print $2 }' "$tmp/out")")
    p99=$(to_ms "$(awk -v p="99$suffix" '$1 == p { print $2 }' "$tmp/out")")
    # shellcheck disable=SC2046
    row "$label" "$(cpu_us_per_req "$n")" "$rps" "$p50" "$p99" "$(rss_mb)" $(per_req "$n") "-" "-" "-"
}

wrk_run() { # label conns
    local label=$1 conns=$2
    [ -n "$WRK" ] || { row "$label" "(wrk not installed)" "" "" "" ""; return; }
    measure "$WRK" -t1 -c"$conns" -d"${DUR}s" --latency "$URL"
    wrk_row "$label" "%"
}

wrk2_run() { # label rate conns
    local label=$1 rate=$2 conns=$3
    [ -n "$WRK2" ] || { row "$label" "(wrk2: set WRK2)" "" "" "" ""; return; }
    measure "$WRK2" -t1 -c"$conns" -d"${DUR}s" -R"$rate" --latency "$URL"
    wrk_row "$label" ".000%"
}

if [ -z "${ONLY:-}" ]; then
ratebench_run "ratebench -R10k -c100" 10000 100
ratebench_run "ratebench -R10k -c100 --io-uring on" 10000 100 --io-uring on
ratebench_run "ratebench -R10k -c100 --spin 0" 10000 100 --spin 0
ratebench_run "ratebench -R10k -c100 --precision 1ms" 10000 100 --precision 1ms
ratebench_run "ratebench -R10k -c100 --no-kernel-timestamps" 10000 100 --no-kernel-timestamps
oha_run "oha -q 10000 -c 100 --latency-correction" 10000 100
wrk2_run "wrk2 -R10000 -c100" 10000 100
ratebench_run "ratebench -R1000 -c10" 1000 10
ratebench_run "ratebench -R1000 -c10 --io-uring on" 1000 10 --io-uring on
ratebench_run "ratebench -R1000 -c10 --spin 0" 1000 10 --spin 0
ratebench_run "ratebench -R1000 -c10 --spin 1ms" 1000 10 --spin 1ms
oha_run "oha -q 1000 -c 10 --latency-correction" 1000 10
wrk2_run "wrk2 -R1000 -c10" 1000 10
wrk_run "wrk -c1 (closed loop: the p50 floor)" 1
wrk_run "wrk -c100 (closed loop: target capacity)" 100

fi

if [ -z "${ONLY:-}" ] || [ "$ONLY" = script ]; then
echo
echo "scripting: the same 10k req/s without a script, with a static wrk-table script, with request():"
ratebench_run "ratebench -R10k -c100 (no script)" 10000 100
ratebench_run "ratebench -R10k -c100 -s lua/post.lua" 10000 100 -s lua/post.lua
ratebench_run "ratebench -R10k -c100 -s lua/counter.lua" 10000 100 -s lua/counter.lua
ratebench_run "ratebench -R60k -c100 (no script)" 60000 100
ratebench_run "ratebench -R60k -c100 -s lua/counter.lua" 60000 100 -s lua/counter.lua

fi

# Streams: 50-token SSE answers (1 ms apart after a 0 ms first token) from serve's
# OpenAI-compatible endpoint, on a second target pinned to the same core.
stream_run() { # label rate conns
    local label=$1 rate=$2 conns=$3
    measure "$RB" -R"$rate" -c"$conns" -t1 -d"${DUR}s" -m POST --body '{"model":"m","stream":true}' \
        "http://127.0.0.1:$((PORT + 1))/v1/chat/completions"
    local tokens ach lag busy
    tokens=$(awk '/^Streaming:/ { print $5 }' "$tmp/out")
    ach=$(awk '/achieved \(sent\)/ { print $7 }' "$tmp/out")
    lag=$(awk '/^Send lag:/ { print $6 }' "$tmp/out" | tr -d ,)
    busy=$(awk '/^Generator:/ { print $4 }' "$tmp/out")
    printf "%-44s %12s %12s %10s %10s %9s\n" "$label" "$(cpu_us_per_req "$tokens")/tok" "$ach" "$lag" "$busy" "$(rss_mb)"
    grep WARNING "$tmp/out" | sed 's/^/    /'
}
if [ -z "${ONLY:-}" ] || [ "$ONLY" = stream ]; then
taskset -c "$TARGET_CORE" "$RB" serve --addr "127.0.0.1:$((PORT + 1))" --ttft 0 --token-interval 1ms --tokens 50 >/dev/null 2>&1 &
STREAM_SERVER=$!
trap 'kill $SERVER $STREAM_SERVER 2>/dev/null' EXIT
sleep 0.3
echo
printf "%-44s %12s %12s %10s %10s %9s\n" "streams (50 tokens, 1 ms apart)" "cpu us/token" "achieved/s" "lag p99" "busy" "peak MB"
stream_run "ratebench -R200 -c100 (10k tokens/s)" 200 100
stream_run "ratebench -R500 -c100 (25k tokens/s)" 500 100
stream_run "ratebench -R1000 -c200 (50k tokens/s)" 1000 200

fi

# HTTP/2: the same target speaking h2c (prior knowledge), 4 connections with up to 100
# streams each, beside oha --http2 and h2load (nghttp2's, --rps per connection).
h2load_run() { # label rate-or-0 conns streams
    local label=$1 rate=$2 conns=$3 streams=$4
    command -v h2load >/dev/null || { row "$label" "(h2load not installed)" "" "" "" ""; return; }
    local rps=()
    [ "$rate" -gt 0 ] && rps=(--rps "$((rate / conns))")
    measure h2load -c "$conns" -m "$streams" -D "$DUR" "${rps[@]}" "http://127.0.0.1:$((PORT + 2))/"
    local n rps_got p50 p99
    n=$(awk '/^requests:/ { print $8 }' "$tmp/out")
    rps_got=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$tmp/out")
    # h2load prints min/max/mean/sd of request times, not percentiles: mean in the p50
    # column, marked.
    p50=$(awk '/^time for request:/ { print $4 }' "$tmp/out")
    row "$label" "$(cpu_us_per_req "$n")" "$rps_got" "mean $(to_ms "$p50")" "-" "$(rss_mb)"
}
if [ -z "${ONLY:-}" ] || [ "$ONLY" = http2 ]; then
taskset -c "$TARGET_CORE" "$RB" serve --addr "127.0.0.1:$((PORT + 2))" --http2 --body-size 100 >/dev/null 2>&1 &
H2_SERVER=$!
trap 'kill $SERVER ${STREAM_SERVER:-} $H2_SERVER 2>/dev/null' EXIT
sleep 0.3
echo
echo "HTTP/2 (h2c, 4 connections, up to 100 streams each):"
H2URL="http://127.0.0.1:$((PORT + 2))/"
URL_SAVED=$URL; URL=$H2URL
ratebench_run "ratebench --http2 -R10k -c4" 10000 4 --http2
ratebench_run "ratebench --http2 -R10k -c4 --precision 1ms" 10000 4 --http2 --precision 1ms
oha_run "oha --http2 -q 10000 -c 4 -p 100" 10000 4 -p 100 --http2
h2load_run "h2load -c4 -m100 --rps 2500 (10k/s)" 10000 4 100
echo "highest rate: h2load closed loop vs ratebench open loop at rising rates:"
h2load_run "h2load -c4 -m100 (closed loop: capacity)" 0 4 100
for r in ${H2_RATES:-100000 130000 150000 180000}; do
    ratebench_run "ratebench --http2 -R$r -c4" "$r" 4 --http2
done
URL=$URL_SAVED
fi

if [ "${SWEEP:-0}" = 1 ]; then
    echo
    echo "highest rate held within 1 % (ratebench, one generator core):"
    for r in ${SWEEP_RATES:-40000 50000 60000 70000 90000 120000}; do
        ratebench_run "ratebench -R$r -c100" "$r" 100
        ratebench_run "ratebench -R$r -c100 --io-uring on" "$r" 100 --io-uring on
    done
fi
if [ "${MEMORY:-0}" = 1 ]; then
    echo
    for d in 15 60; do
        DUR=$d ratebench_run "ratebench -R10k -c100 -d${d}s (memory)" 10000 100
    done
fi
rm -rf "$tmp"
