#!/usr/bin/env bash
# Regenerates the README's screenshots of the HTML report: one run with a stall, one of a
# streaming LLM endpoint, each against `ratebench serve` on loopback, rendered by headless
# Chromium (Debian's `chromium`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
RB=target/release/ratebench
tmp=$(mktemp -d)
shot() { # page.html out.png height
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$tmp/profile" --window-size=1500,"$3" \
        --screenshot="$2" "file://$1" >/dev/null 2>&1
}
"$RB" serve --addr 127.0.0.1:18121 --delay 200us --stall 1s@3s >/dev/null 2>&1 &
S1=$!
"$RB" serve --addr 127.0.0.1:18122 --ttft 100ms..300ms --token-interval 10ms..30ms --tokens 20..60 >/dev/null 2>&1 &
S2=$!
trap 'kill $S1 $S2 2>/dev/null || true' EXIT
sleep 0.5
"$RB" -R1000 -c50 -t1 -d8s --html "$tmp/stall.html" http://127.0.0.1:18121/ >/dev/null
"$RB" -R20 -c40 -t1 -d8s -m POST \
    --body '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    --html "$tmp/stream.html" http://127.0.0.1:18122/v1/chat/completions >/dev/null
shot "$tmp/stall.html" docs/report-stall.png 2600
shot "$tmp/stream.html" docs/report-streaming.png 3300
echo "wrote docs/report-stall.png docs/report-streaming.png"
