#!/usr/bin/env bash
# Truth against a server we did not write: the default mode (kernel receive stamps) beside
# --no-kernel-timestamps (responses timed when read, the simpler path) against nginx on
# loopback, in the configurations that once went wrong — one connection per thread, an
# uneven split of -c over -t, a server that closes every connection, random arrivals.
# nginx answers a 100-byte body from memory in tens of microseconds: every corrected p50
# should be that, and the two modes should agree.
#
#   bash benches/truth.sh            # ~2 minutes
#   DUR=10 bash benches/truth.sh     # seconds per run (default 5)
#   RB=/path/to/ratebench bash benches/truth.sh   # another build (e.g. an older one)
#
# nginx comes from Debian's nginx-light (installed when missing, if possible); it runs
# pinned to one core, the generator to the other, on 127.0.0.1 only, and is stopped at the
# end.
set -uo pipefail
cd "$(dirname "$0")/.."

TARGET_CORE=${TARGET_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
PORT=${PORT:-18180}
DUR=${DUR:-5}

command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ||
    { apt-get install -y -qq nginx-light >/dev/null 2>&1 || true; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is needed (Debian: nginx-light)"; exit 1; }
if [ -z "${RB:-}" ]; then
    cargo build --release -q || exit 1
    RB=target/release/ratebench
fi

tmp=$(mktemp -d)
mkdir -p "$tmp/logs"
body=$(printf '%0100d' 0)
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "$body"; }
    }
    server {
        listen 127.0.0.1:$((PORT + 1));
        keepalive_timeout 0;
        location / { return 200 "$body"; }
    }
}
EOF
taskset -c "$TARGET_CORE" "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 0.5

row() { printf "%-34s %-24s %9s %9s %9s %9s %9s %12s\n" "$@"; }
row "run" "mode" "p50" "p99" "send p99" "read p99" "connect" "waited/busy"
row "---" "----" "---" "---" "--------" "--------" "-------" "-----------"
one() { # label url mode-flag args...
    local label=$1 url=$2 mode=$3; shift 3
    local flags=()
    [ "$mode" = "default" ] || flags=("$mode")
    taskset -c "$GEN_CORE" "$RB" -d"${DUR}s" "$@" "${flags[@]}" "$url" >"$tmp/out" 2>&1
    awk -v label="$label" -v mode="$mode" '
        / 50.000%/ { p50 = $2 }
        / 99.000%/ { p99 = $2 }
        /^Send lag:/ { s = $6; sub(",", "", s); match($0, /[0-9]+ waited for a busy/); q = substr($0, RSTART, RLENGTH); split(q, qq, " ") }
        /^Read lag: p50/ { r = $6; sub(",", "", r) }
        /^Connect:/ { c = $4; sub(",", "", c) }
        /WARNING/ { w = w "\n    " $0 }
        END { printf "%-34s %-24s %9s %9s %9s %9s %9s %12s%s\n", label, mode, p50, p99, s, (r == "" ? "-" : r), c, qq[1], w }
    ' "$tmp/out"
}
for mode in default --no-kernel-timestamps; do
    one "-R1000 -c1 -t1" "http://127.0.0.1:$PORT/" "$mode" -R1000 -c1 -t1
    one "-R1000 -c2 -t2" "http://127.0.0.1:$PORT/" "$mode" -R1000 -c2 -t2
    one "-R2000 -c3 -t2" "http://127.0.0.1:$PORT/" "$mode" -R2000 -c3 -t2
    one "-R1000 -c20, keepalive_timeout 0" "http://127.0.0.1:$((PORT + 1))/" "$mode" -R1000 -c20 -t1
    one "-R300 -c10 constant" "http://127.0.0.1:$PORT/" "$mode" -R300 -c10 -t1
    one "-R300 -c10 --arrival poisson" "http://127.0.0.1:$PORT/" "$mode" -R300 -c10 -t1 --arrival poisson
done
