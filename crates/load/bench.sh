#!/bin/sh
# Emulator capacity (--instant) and `podscale load` vs wrk against the same server, in
# one run, with each generator's peak RSS. Needs wrk (Debian: apt-get install wrk) and
# GNU time. wrk speaks HTTP/1.1 only; the --http2 rows are podscale load's h2c over 4
# connections against the same server. Usage: crates/load/bench.sh [SECONDS] [CONNECTIONS]
set -eu
SECS=${1:-5}
CONNS=${2:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/loadbench
[ -x "$BIN" ] || cargo build --release -p podscale-load --example loadbench
TMP=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$TMP"' EXIT
"$BIN" serve --instant > "$TMP/serve.out" &
SERVER=$!
for _ in $(seq 50); do grep -q listening "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^listening //p' "$TMP/serve.out")
URL="http://$ADDR/v1/completions"
# The same request as `podscale load`'s default: 64 prompt tokens, max_tokens 16.
PROMPT=$(printf 'hey %.0s' $(seq 64))
cat > "$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"$PROMPT","max_tokens":16}'
LUA
echo "server: loadbench serve --instant on $ADDR; ${SECS}s per run; $CONNS connections"
printf '%-34s %12s %10s %10s %10s\n' generator "requests/s" p50 p99 "RSS MiB"
/usr/bin/time -f '%M' -o "$TMP/wrk.rss" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$TMP/post.lua" "$URL" > "$TMP/wrk.out"
RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.out")
P50=$(awk '$1=="50%" {print $2}' "$TMP/wrk.out")
P99=$(awk '$1=="99%" {print $2}' "$TMP/wrk.out")
printf '%-34s %12s %10s %10s %10s\n' "wrk -c$CONNS (closed loop)" "$RPS" "$P50" "$P99" "$(($(cat "$TMP/wrk.rss") / 1024))"
run_load() {
    label=$1; shift
    /usr/bin/time -f '%M' -o "$TMP/load.rss" "$BIN" load "$URL" "$1" "$2" "$SECS" ${3:-} > "$TMP/load.out"
    python3 - "$label" "$TMP/load.out" "$TMP/load.rss" <<'PY'
import json, sys
label, out, rss = sys.argv[1:]
r = json.loads(open(out).readline())
lat = r["latency"] or {}
ms = lambda x: f"{x*1000:.2f}ms" if x is not None else "-"
errs = sum(r["errors"].values())
print(f"{label:<34} {r['throughput']:>12.0f} {ms(lat.get('p50')):>10} {ms(lat.get('p99')):>10} {int(open(rss).read())//1024:>10}" + (f"   ({errs} errors)" if errs else ""))
PY
}
run_load "podscale load -c$CONNS (closed loop)" closed "$CONNS"
WRK_RATE=$(printf '%.0f' "$RPS")
run_load "podscale load --rate $WRK_RATE (open)" rate "$WRK_RATE" "$CONNS"
# HTTP/2 (h2c): the same requests multiplexed over 4 connections.
export LOADBENCH_HTTP2=1
run_load "podscale load --http2 -c$CONNS (closed)" closed "$CONNS" 4
run_load "podscale load --http2 --rate $WRK_RATE (open)" rate "$WRK_RATE" 4
unset LOADBENCH_HTTP2
