#!/usr/bin/env bash
# A build without the `sim` feature (no registry simulator, no embedded default, no test keys):
# it carries none of certs-test/'s private keys, refuses to start without --config, and serves
# examples/production/brama.toml (a PKCS#11 key on a SoftHSM2 token, a freshly made PKI).
#
#   scripts/check-production-build.sh [BINARY]
#
# BINARY defaults to a debug build made here with `cargo build --no-default-features` (copied to
# target/production-check/; target/debug/brama stays the default build); pass
# target/release/brama of `cargo build --release --no-default-features` to check a release.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet --no-default-features --bin brama
  mkdir -p target/production-check
  cp target/debug/brama target/production-check/brama
  bin=target/production-check/brama
  # target/debug/brama goes back to the default build (cargo keeps both builds' artifacts).
  cargo build --quiet --bin brama
fi
fail() { echo "check-production-build: $*" >&2; exit 1; }

# 1. No test key: a line from the middle of every checked-in private key must not occur in the
# binary. The same search finds them in a default build (tests/cli.rs checks that side).
for key in certs-test/*.key; do
  line=$(sed -n 3p "$key")
  [ -n "$line" ] || fail "$key has no third line"
  if grep -qF -- "$line" "$bin"; then fail "$bin carries $key"; fi
done

# 2. No embedded default, no simulator.
if out=$("$bin" serve 2>&1); then fail "serve without --config started"; fi
grep -q "no embedded default configuration" <<<"$out" || fail "serve without --config: $out"
if "$bin" registry-sim --help >/dev/null 2>&1; then fail "registry-sim exists"; fi
if out=$("$bin" serve --config config/brama.toml 2>&1); then fail "served a [simulator] configuration"; fi
grep -q "this build has no registry simulator" <<<"$out" || fail "serve with [simulator]: $out"

# 3. The production-style configuration, under a temporary /etc/brama.
etc=$(mktemp -d)
trap '[ "$pid" -gt 0 ] && kill "$pid" 2>/dev/null; [ "$ocsp_pid" -gt 0 ] && kill "$ocsp_pid" 2>/dev/null; rm -rf "$etc"' EXIT
pid=0
ocsp_pid=0
"$bin" certs init --out "$etc/pki" --globalconf "$etc/globalconf" >/dev/null
# The CA's OCSP responder: openssl's, from an index naming this server's certificates.
for c in ss1-auth sign-GOV-00000001; do
  serial=$(openssl x509 -noout -serial -in "$etc/pki/$c.pem" | cut -d= -f2)
  printf 'V\t440101000000Z\t\t%s\tunknown\t/CN=%s\n' "$serial" "$c"
done >"$etc/ocsp-index.txt"
openssl ocsp -index "$etc/ocsp-index.txt" -CA "$etc/pki/ca.pem" -rsigner "$etc/pki/ocsp-responder.pem" \
  -rkey "$etc/pki/ocsp-responder.key" -port 0 -nmin 60 >"$etc/ocsp.log" 2>&1 &
ocsp_pid=$!
ocsp_port=""
for _ in $(seq 1 100); do
  ocsp_port=$(sed -n 's/^ACCEPT .*:\([0-9]*\) PID=.*/\1/p' "$etc/ocsp.log" | head -1)
  [ -n "$ocsp_port" ] && break
  sleep 0.05
done
[ -n "$ocsp_port" ] || fail "openssl ocsp did not start: $(cat "$etc/ocsp.log")"
sed -i "s#http://127.0.0.1:8090/ocsp#http://127.0.0.1:$ocsp_port/#" "$etc/globalconf/SEVDEIR-TEST/shared-params.xml"
bash scripts/softhsm-init.sh "$etc/hsm" brama 4321 654321 \
  --import "$etc/pki/sign-GOV-00000001.key" --key-label sign-GOV-00000001 --id 01 >/dev/null
echo 4321 >"$etc/hsm-pin"
sed -e "s#/etc/brama#$etc#g; s#/var/lib/brama#$etc/var#g" \
  -e 's#127.0.0.1:8080#127.0.0.1:0#; s#127.0.0.1:8443#127.0.0.1:0#; s#0.0.0.0:5500#127.0.0.1:0#; s#127.0.0.1:5588#127.0.0.1:0#; s#0.0.0.0:5577#127.0.0.1:0#' \
  examples/production/brama.toml >"$etc/brama.toml"
"$bin" config check --config "$etc/brama.toml" >/dev/null || fail "config check refused it"

"$bin" serve --config "$etc/brama.toml" >"$etc/log" 2>&1 &
pid=$!
admin=""
for _ in $(seq 1 200); do
  admin=$(sed -n 's/.*"admin":"\([0-9.]*:[0-9]*\)".*/\1/p' "$etc/log" | head -1)
  [ -n "$admin" ] && break
  kill -0 "$pid" 2>/dev/null || fail "serve exited: $(cat "$etc/log")"
  sleep 0.05
done
[ -n "$admin" ] || fail "serve did not report its admin address: $(cat "$etc/log")"
# Healthy once its own OCSP responses have been fetched.
health=""
for _ in $(seq 1 100); do
  health=$(curl -sS "http://$admin/health") || fail "GET /health failed"
  grep -qi "^ok" <<<"$health" && break
  sleep 0.1
done
grep -qi "^ok" <<<"$health" || fail "/health: $health"
[ -n "$(ls "$etc/var/ocsp")" ] || fail "no OCSP response kept in the cache directory"
grep -q "PKCS#11 module initialised" "$etc/log" || fail "the signing key is not on the token: $(cat "$etc/log")"
kill -TERM "$pid"
wait "$pid" || fail "serve did not stop cleanly on SIGTERM: $(cat "$etc/log")"
pid=0
echo "check-production-build: $bin has no test key, no simulator, and serves examples/production/brama.toml"
