#!/usr/bin/env bash
# The same sharded plan as N local processes, then the merge: try --shard/--start-at and
# `ratebench report` without a cluster.
#
#   scripts/shards-local.sh 3 -R3000 -d10s -c60 -t1 http://127.0.0.1:8080/
#
# Each shard writes shard-I.hlog (and its text report to shard-I.txt) in $OUT (default a
# fresh temporary directory); the merged report is printed at the end.
set -euo pipefail
N=${1:?usage: shards-local.sh N [run flags…] URL}
shift
RB=${RB:-$(dirname "$0")/../target/release/ratebench}
[ -x "$RB" ] || (cd "$(dirname "$0")/.." && cargo build --release -q)
OUT=${OUT:-$(mktemp -d)}
# Every shard starts its schedule at the same instant, 2 s from now.
START=$(python3 -c 'import time; print(f"{time.time() + 2:.3f}")')
pids=()
for ((i = 0; i < N; i++)); do
    "$RB" "$@" --shard "$i/$N" --start-at "$START" --hdr-log "$OUT/shard-$i.hlog" \
        >"$OUT/shard-$i.txt" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
echo "shards finished (exit $status); logs in $OUT"
"$RB" report "$OUT"/shard-*.hlog
