#!/usr/bin/env bash
# First end-to-end figure: requests/s through the full path of the embedded default
# (client proxy → mutual TLS → server proxy → registry simulator → back), driven by ApacheBench
# with keep-alive from the same machine. `brama load` (with open-model rates and HDR
# histograms) replaces ab here later.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ab >/dev/null || apt-get install -y -q apache2-utils >/dev/null
cargo build --release -q
./target/release/brama serve >/tmp/brama-e2e.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf 127.0.0.1:5588/health >/dev/null && break; sleep 0.1; done
req=examples/soap/getBirthRecord.xml
n=${REQUESTS:-20000}
ab -q -k -n 500 -c 8 -p "$req" -T 'text/xml; charset=UTF-8' http://127.0.0.1:8080/ >/dev/null # warm-up
echo "SOAP getBirthRecord"
printf '%-12s %12s %12s %12s %10s\n' concurrency 'requests/s' 'mean ms' 'p99 ms' failed
for c in 1 16 64; do
  out=$(ab -k -n "$n" -c "$c" -p "$req" -T 'text/xml; charset=UTF-8' http://127.0.0.1:8080/ 2>&1)
  rps=$(awk '/Requests per second/ {print $4}' <<<"$out")
  mean=$(awk '/Time per request/ && /\(mean\)/ {print $4; exit}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  failed=$(awk '/Failed requests/ {print $3}' <<<"$out")
  printf '%-12s %12s %12s %12s %10s\n' "$c" "$rps" "$mean" "$p99" "$failed"
done
# REST through the same path: the eHealth declarations lookup (GET, signed both ways).
rest='http://127.0.0.1:8080/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations?patient=3f2504e0-4f89-41d3-9a0c-0305e82c3301'
client='X-Road-Client: SEVDEIR-TEST/GOV/00000001/DIIA'
ab -q -k -n 500 -c 8 -H "$client" "$rest" >/dev/null # warm-up
echo "REST (r1) GET"
printf '%-12s %12s %12s %12s %10s\n' concurrency 'requests/s' 'mean ms' 'p99 ms' failed
for c in 1 16 64; do
  out=$(ab -k -n "$n" -c "$c" -H "$client" "$rest" 2>&1)
  rps=$(awk '/Requests per second/ {print $4}' <<<"$out")
  mean=$(awk '/Time per request/ && /\(mean\)/ {print $4; exit}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  failed=$(awk '/Failed requests/ {print $3}' <<<"$out")
  non2xx=$(awk '/Non-2xx responses/ {print $3}' <<<"$out")
  printf '%-12s %12s %12s %12s %10s\n' "$c" "$rps" "$mean" "$p99" "$failed${non2xx:+ (non-2xx $non2xx)}"
done
echo "peak RSS of the brama process: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
