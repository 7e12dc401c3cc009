#!/usr/bin/env bash
# End-to-end benchmark: brama's two-hop path against nginx's on the same machine, in one run.
#
#   brama:  brama load → ss1 (brama serve, client side) → mutual TLS, signed → ss2 (brama serve,
#           provider side) → registry simulator (brama registry-sim), and back
#   nginx:  brama load → nginx hop 1 (plain HTTP in) → mutual TLS → nginx hop 2 → the same simulator
#
# Both paths carry the same requests (SOAP getBirthRecord at DRACS; REST GET of the eHealth
# declarations lookup), driven by `brama load` (closed model) at each concurrency level, brama
# then nginx at each level. nginx does no signing or X-Road checks: its figure is the ceiling a
# reverse proxy reaches on this machine, and the tables give brama's throughput as a fraction of
# it. At the end: the peak RSS (VmHWM) of the three brama processes. Topology, ports and
# configurations: benches/e2e/README.md.
#
#   bash benches/e2e.sh
#   DURATION=2s LEVELS="1 64" SCENARIOS=soap NGINX=0 bash benches/e2e.sh
#
# Environment: DURATION (10s per level and path), WARMUP (2s), LEVELS ("1 16 64 256"),
# SCENARIOS ("soap rest"), NGINX (1; 0 skips nginx), NGINX_WORKERS (auto: one per core, per
# nginx instance), SOAK (unset; a duration runs SOAP at concurrency 64 that long after the levels
# and samples each brama process's VmRSS every 10 s), LOAD_THREADS (1: brama load's runtime
# threads), BUILD (1; 0 skips `cargo build`), OUT (/tmp/brama-e2e.json: the summary as JSON),
# LOG (0; 1 turns ss1's message log on, time-stamped by the simulator's TSA every LOG_INTERVAL
# seconds, 60; the backlog and stamped counts are printed at the end; LOG=postgres keeps the
# records in a throwaway PostgreSQL, `[store] url`, instead of files).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
LEVELS=${LEVELS:-1 16 64 256}
SCENARIOS=${SCENARIOS:-soap rest}
NGINX=${NGINX:-1}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
SOAK=${SOAK:-}
LOAD_THREADS=${LOAD_THREADS:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-/tmp/brama-e2e.json}
LOG=${LOG:-0}
LOG_INTERVAL=${LOG_INTERVAL:-60}

# Fixed loopback ports (also in benches/e2e/*.toml, *.conf.in and globalconf/).
SS1_CLIENT=18101 SS1_SERVER=18102 SS1_ADMIN=18103
SS2_CLIENT=18111 SS2_SERVER=18112 SS2_ADMIN=18113
SIM=18120
NGINX_HOP1=18131 NGINX_HOP2=18132

SOAP_REQUEST=examples/soap/getBirthRecord.xml
REST_CLIENT=SEVDEIR-TEST/GOV/00000001/DIIA
REST_SERVICE=SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations
REST_PATH='?patient=3f2504e0-4f89-41d3-9a0c-0305e82c3301'

die() {
  echo "e2e: $*" >&2
  exit 1
}
log() { echo "e2e: $*" >&2; }

for s in $SCENARIOS; do
  case $s in soap | rest) ;; *) die "SCENARIOS: unknown scenario '$s' (soap, rest)" ;; esac
done
for c in $LEVELS; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || die "LEVELS: '$c' is not a concurrency"
done

# --- tools -------------------------------------------------------------------------------
apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "$* missing and not root: install it ($*)"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "$* missing and no apt-get: install it"
  log "installing $*"
  "${sudo[@]}" apt-get install -y -q "$@" >/dev/null ||
    { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}
command -v curl >/dev/null || apt_install curl
command -v python3 >/dev/null || apt_install python3
nginx_bin='' nginx_client_pid='' nginx_provider_pid=''
if [ "$NGINX" != 0 ]; then
  nginx_bin=$(command -v nginx || true)
  [ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
  if [ -z "$nginx_bin" ]; then
    apt_install nginx-light
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  fi
fi

# c256 needs ~3 descriptors per request across the chain; take what the hard limit allows.
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] || hard=1048576
ulimit -n "$hard" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] ||
  log "warning: ulimit -n is $(ulimit -n); concurrency 256 may fail on descriptors"

if [ "$BUILD" != 0 ]; then
  log "cargo build --release"
  cargo build --release -q
fi
bin=${CARGO_TARGET_DIR:-target}/release/brama
[ -x "$bin" ] || die "$bin not found (build it, or set CARGO_TARGET_DIR)"

# --- configuration checks ----------------------------------------------------------------
python3 benches/e2e/globalconf.py --check ||
  die "benches/e2e/globalconf/ does not match config/globalconf and certs-test/: run python3 benches/e2e/globalconf.py"
for ss in ss1 ss2; do
  "$bin" config check --config "benches/e2e/$ss.toml" >/dev/null || die "benches/e2e/$ss.toml: configuration refused (above)"
done

ports=("$SS1_CLIENT" "$SS1_SERVER" "$SS1_ADMIN" "$SS2_CLIENT" "$SS2_SERVER" "$SS2_ADMIN" "$SIM")
[ "$NGINX" = 0 ] || ports+=("$NGINX_HOP1" "$NGINX_HOP2")
taken=$(python3 - "${ports[@]}" <<'EOF'
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
    except OSError:
        print(p, end=" ")
    finally:
        s.close()
EOF
)
[ -z "$taken" ] || die "port(s) in use on 127.0.0.1: $taken(another e2e run? see benches/e2e/README.md for the port map)"

# --- processes ---------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/brama-e2e.XXXXXX)
mkdir -p "$tmp/res"
pids=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f benches/e2e/.ss1-log.toml
  [ -z "${pg_dir:-}" ] || bash scripts/pg-throwaway.sh stop "$pg_dir" || true
  if [ $rc = 0 ]; then rm -rf "$tmp"; else log "logs kept in $tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_up NAME PID URL: until URL answers 2xx; the process's log if it dies or never answers.
wait_up() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$tmp/$name.log" >&2; die "$name exited at start"; }
    curl -sf -o /dev/null "$url" && return 0
    sleep 0.1
  done
  tail -n 20 "$tmp/$name.log" >&2
  die "$name: no answer from $url after 10 s"
}

"$bin" registry-sim --listen "127.0.0.1:$SIM" --wsdl-dir wsdl \
  --ocsp-ca certs-test/ca.pem --ocsp-cert certs-test/ocsp-responder.pem --ocsp-key certs-test/ocsp-responder.key \
  --tsa-cert certs-test/tsa.pem --tsa-key certs-test/tsa.key \
  >"$tmp/sim.log" 2>&1 &
sim_pid=$!
pids+=("$sim_pid")
"$bin" serve --config benches/e2e/ss2.toml >"$tmp/ss2.log" 2>&1 &
ss2_pid=$!
pids+=("$ss2_pid")
ss1_conf=benches/e2e/ss1.toml
if [ "$LOG" != 0 ]; then
  # The message log on the client side, time-stamped every LOG_INTERVAL seconds by the
  # simulator's TSA (a copy beside the original, so its relative paths hold).
  ss1_conf=benches/e2e/.ss1-log.toml
  sed "s#^\[log\]#[log]\nmessages_dir = \"$tmp/messages\"\ntimestamp_interval_s = $LOG_INTERVAL#" \
    benches/e2e/ss1.toml >"$ss1_conf"
fi
if [ "$LOG" = postgres ]; then
  pg_dir=$(mktemp -d /tmp/brama-e2e-pg.XXXXXX)
  pg_url=$(bash scripts/pg-throwaway.sh start "$pg_dir") || die "PostgreSQL did not start (apt-get install postgresql)"
  printf '\n[store]\nurl = "%s"\nnode = "ss1"\n' "$pg_url" >>"$ss1_conf"
fi
"$bin" serve --config "$ss1_conf" >"$tmp/ss1.log" 2>&1 &
ss1_pid=$!
pids+=("$ss1_pid")
wait_up sim "$sim_pid" "http://127.0.0.1:$SIM/_sim/stats"
wait_up ss2 "$ss2_pid" "http://127.0.0.1:$SS2_ADMIN/health"
wait_up ss1 "$ss1_pid" "http://127.0.0.1:$SS1_ADMIN/health"

if [ "$NGINX" != 0 ]; then
  user_line=
  [ "$(id -u)" != 0 ] || user_line="user root root;"
  for hop in client provider; do
    d=$tmp/nginx-$hop
    mkdir -p "$d"
    sed -e "s|@PREFIX@|$d|g" -e "s|@ROOT@|$root|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" \
      -e "s|@USER@|$user_line|g" "benches/e2e/nginx-$hop.conf.in" >"$d/nginx.conf"
    "$nginx_bin" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$tmp/nginx-$hop.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    printf -v "nginx_${hop}_pid" %s "$pid"
  done
  # Up when a REST request comes back through both hops (hop 2 wants a client certificate).
  for i in $(seq 101); do
    for hop in client provider; do
      p=nginx_${hop}_pid
      kill -0 "${!p}" 2>/dev/null ||
        { cat "$tmp/nginx-$hop.log" "$tmp/nginx-$hop/error.log" >&2 2>/dev/null; die "nginx ($hop) exited at start"; }
    done
    curl -sf -o /dev/null -H "X-Road-Client: $REST_CLIENT" "http://127.0.0.1:$NGINX_HOP1/r1/$REST_SERVICE$REST_PATH" && break
    [ "$i" != 101 ] || { cat "$tmp"/nginx-*/error.log >&2; die "nginx: no answer through both hops after 10 s"; }
    sleep 0.1
  done
fi

# smoke PATH PORT: one SOAP and one REST request must come back 200 without a fault.
smoke() {
  local name=$1 port=$2 out code
  out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: text/xml; charset=UTF-8' \
    --data-binary "@$SOAP_REQUEST" "http://127.0.0.1:$port/") || die "$name: SOAP request failed to connect"
  code=${out##*$'\n'}
  if [ "$code" != 200 ] || grep -q faultcode <<<"$out"; then
    head -c 2000 <<<"$out" >&2
    die "$name: the SOAP smoke request failed (HTTP $code)"
  fi
  out=$(curl -s -w '\n%{http_code}' -H "X-Road-Client: $REST_CLIENT" \
    "http://127.0.0.1:$port/r1/$REST_SERVICE$REST_PATH") || die "$name: REST request failed to connect"
  code=${out##*$'\n'}
  if [ "$code" != 200 ]; then
    head -c 2000 <<<"$out" >&2
    [ "$name" != nginx ] || cat "$tmp"/nginx-*/error.log >&2
    die "$name: the REST smoke request failed (HTTP $code)"
  fi
}
smoke brama "$SS1_CLIENT"
[ "$NGINX" = 0 ] || smoke nginx "$NGINX_HOP1"

# --- load --------------------------------------------------------------------------------
# load SCENARIO PORT CONCURRENCY DURATION OUTFILE (errors are reported in the summary, not fatal)
load() {
  local scenario=$1 port=$2 c=$3 duration=$4 out=$5 args
  case $scenario in
    soap) args=(--scenario soap --url "http://127.0.0.1:$port/" --request "$SOAP_REQUEST") ;;
    rest) args=(--scenario rest --url "http://127.0.0.1:$port" --client "$REST_CLIENT"
      --service "$REST_SERVICE" --path "$REST_PATH") ;;
  esac
  "$bin" load "${args[@]}" --concurrency "$c" --duration "$duration" --warmup "$WARMUP" \
    --threads "$LOAD_THREADS" --max-error-rate 1 --json --quiet >"$out" 2>"$out.err" ||
    { cat "$out.err" >&2; die "brama load failed ($scenario, $port, c=$c)"; }
}
brief() {
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%.0f req/s, p99 %s ms, %d errors" % (r["throughput_rps"], r["latency_ms"]["p99"], r["errors"]))' "$1"
}

for s in $SCENARIOS; do
  for c in $LEVELS; do
    load "$s" "$SS1_CLIENT" "$c" "$DURATION" "$tmp/res/$s-brama-$c.json"
    log "$s c=$c brama: $(brief "$tmp/res/$s-brama-$c.json")"
    if [ "$NGINX" != 0 ]; then
      load "$s" "$NGINX_HOP1" "$c" "$DURATION" "$tmp/res/$s-nginx-$c.json"
      log "$s c=$c nginx: $(brief "$tmp/res/$s-nginx-$c.json")"
    fi
  done
done

# VmHWM / VmRSS of a process, kB.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
hwm() {
  printf '{"ss1": %s, "ss2": %s, "sim": %s}' "$(status_kb "$ss1_pid" VmHWM)" \
    "$(status_kb "$ss2_pid" VmHWM)" "$(status_kb "$sim_pid" VmHWM)"
}
hwm >"$tmp/res/hwm-levels.json"
# nginx: VmHWM summed over each instance's master and workers (for comparison only).
if [ "$NGINX" != 0 ]; then
  total=0
  for p in "$nginx_client_pid" "$nginx_provider_pid"; do
    for q in $p $(cat "/proc/$p/task/$p/children" 2>/dev/null); do
      total=$((total + $(status_kb "$q" VmHWM)))
    done
  done
  echo "$total" >"$tmp/res/nginx-hwm-kb"
fi

if [ -n "$SOAK" ]; then
  log "soak: SOAP at concurrency 64 for $SOAK, VmRSS every 10 s"
  load soap "$SS1_CLIENT" 64 "$SOAK" "$tmp/res/soak.json" &
  soak_pid=$!
  t=0
  while :; do
    if [ $((t % 10)) = 0 ] || ! kill -0 "$soak_pid" 2>/dev/null; then
      echo "$t $(status_kb "$ss1_pid" VmRSS) $(status_kb "$ss2_pid" VmRSS) $(status_kb "$sim_pid" VmRSS)" >>"$tmp/res/soak-rss.txt"
    fi
    kill -0 "$soak_pid" 2>/dev/null || break
    sleep 1
    t=$((t + 1))
  done
  wait "$soak_pid" || die "soak run failed"
  hwm >"$tmp/res/hwm-final.json"
fi

if [ "$LOG" != 0 ]; then
  # The time-stamper after the load: everything logged must be stamped within one interval.
  metric() { curl -s "http://127.0.0.1:$SS1_ADMIN/metrics" | sed -n "s/^$1 //p"; }
  # Loose containers and the records of the rounds' files (stamped-*.stamps: magic, token
  # length and token, then the record count).
  containers() {
    python3 -c 'import glob, struct, sys
d = sys.argv[1]
n = len(glob.glob(d + "/*.asice"))
for f in glob.glob(d + "/stamped-*.stamps"):
    b = open(f, "rb").read()[15:]
    t = struct.unpack_from("<I", b)[0]
    n += struct.unpack_from("<I", b, 4 + t)[0]
print(n)' "$1"
  }
  waited=0
  while [ "$(metric brama_timestamp_backlog)" != 0 ] && [ $waited -lt $((LOG_INTERVAL + 30)) ]; do
    sleep 1
    waited=$((waited + 1))
  done
  if [ "$LOG" = postgres ]; then
    kept="$(psql "$pg_url" -tAc 'SELECT count(*) FROM messagelog_records') records in PostgreSQL"
  else
    kept="$(containers "$tmp/messages") containers"
  fi
  log "message log: $(metric brama_timestamped_records_total) records time-stamped, backlog $(metric brama_timestamp_backlog) ${waited} s after the load, $(metric brama_timestamp_failures_total) failed rounds; $kept"
fi

# --- report ------------------------------------------------------------------------------
meta=$(printf '{"duration": "%s", "warmup": "%s", "levels": "%s", "nginx_workers": "%s", "load_threads": %s, "cores": %s, "kernel": "%s", "nginx": "%s", "commit": "%s", "date": "%s"}' \
  "$DURATION" "$WARMUP" "$LEVELS" "$NGINX_WORKERS" "$LOAD_THREADS" "$(nproc)" "$(uname -r)" \
  "$([ -z "$nginx_bin" ] || "$nginx_bin" -v 2>&1 | sed 's|.*/||')" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo +dirty-src)" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
python3 - "$tmp/res" "$OUT" "$meta" "$SCENARIOS" "$LEVELS" <<'EOF'
import json, os, sys

res, out, meta, scenarios, levels = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4].split(), [int(c) for c in sys.argv[5].split()]

def read(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None

def errors_detail(r):
    parts = []
    parts += [f"{k}: {v}" for k, v in sorted(r["errors_by_code"].items())]
    parts += [f"HTTP {k}: {v}" for k, v in sorted(r["errors_by_status"].items())]
    parts += [f"{k}: {v}" for k, v in sorted(r["errors_by_kind"].items()) if v and k not in ("fault", "http_status")]
    return ", ".join(parts)

summary = {"meta": meta, "scenarios": {}}
titles = {"soap": "SOAP getBirthRecord (POST, DRACS)", "rest": "REST GET declarations (eHealth)"}
for s in scenarios:
    print(f"\n{titles[s]}: brama ss1 → ss2 → simulator vs nginx hop 1 → hop 2 → simulator, {meta['duration']} per level after {meta['warmup']} warm-up")
    print(f"{'concurrency':>11} {'brama req/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'nginx req/s':>12} {'nginx p99':>10} {'brama/nginx':>12}")
    rows, notes = [], []
    for c in levels:
        b, n = read(f"{s}-brama-{c}.json"), read(f"{s}-nginx-{c}.json")
        ratio = b["throughput_rps"] / n["throughput_rps"] if n and n["throughput_rps"] else None
        print(f"{c:>11} {b['throughput_rps']:>12,.0f} {b['latency_ms']['p50']:>8.2f} {b['latency_ms']['p99']:>8.2f} {b['errors']:>7}"
              + (f" {n['throughput_rps']:>12,.0f} {n['latency_ms']['p99']:>10.2f} {ratio:>12.2f}" if n else f" {'-':>12} {'-':>10} {'-':>12}"))
        for who, r in (("brama", b), ("nginx", n)):
            if r and r["errors"]:
                notes.append(f"  c={c} {who}: {r['errors']} errors of {r['requests']} ({errors_detail(r)})")
        rows.append({"concurrency": c, "brama": b, "nginx": n, "ratio": ratio})
    for line in notes:
        print(line)
    summary["scenarios"][s] = rows

hwm = read("hwm-levels.json")
summary["peak_rss_kb"] = hwm
print("\npeak RSS (VmHWM) after the levels: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in hwm.items()))
if os.path.exists(os.path.join(res, "nginx-hwm-kb")):
    kb = int(open(os.path.join(res, "nginx-hwm-kb")).read())
    summary["nginx_peak_rss_kb_sum"] = kb
    print(f"  (nginx, both instances, masters and workers summed: {kb / 1024:.1f} MiB)")

soak = read("soak.json")
if soak:
    samples = [list(map(int, l.split())) for l in open(os.path.join(res, "soak-rss.txt")) if l.strip()]
    summary["soak"] = {"load": soak, "rss_kb_samples": [dict(zip(("t_s", "ss1", "ss2", "sim"), x)) for x in samples],
                       "peak_rss_kb": read("hwm-final.json")}
    print(f"\nsoak: SOAP, concurrency 64, {soak['duration_s']:.0f} s: {soak['throughput_rps']:,.0f} req/s, "
          f"p50 {soak['latency_ms']['p50']} ms, p99 {soak['latency_ms']['p99']} ms, {soak['errors']} errors"
          + (f" ({errors_detail(soak)})" if soak["errors"] else ""))
    print(f"VmRSS sampled every 10 s ({len(samples)} samples): first / last / max")
    for i, name in enumerate(("ss1", "ss2", "sim"), start=1):
        col = [x[i] for x in samples]
        print(f"  {name:<4} {col[0] / 1024:8.1f} / {col[-1] / 1024:8.1f} / {max(col) / 1024:8.1f} MiB")
    print("peak RSS (VmHWM) after the soak: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in read("hwm-final.json").items()))

with open(out, "w") as f:
    json.dump(summary, f, indent=1)
print(f"\nsummary: {out}")
EOF
