#!/usr/bin/env bash
# A brama cluster on one machine, with one command: a throwaway PostgreSQL, the registry
# simulator and ss2 (the provider side), and N brama nodes (N=3) sharing the database.
# Applications are submitted spread over the nodes; one node is killed with SIGKILL in the
# middle and restarted; the run ends when every acknowledged application is delivered.
# The last line printed is JSON: accepted, delivered, lost, duplicated, applications_per_s (and
# the CPU per delivered application of each node and of PostgreSQL). docs/cluster.md explains it.
#
#   bash benches/cluster.sh                     # 3000 applications, 3 nodes, 64 submitters
#   bash benches/cluster.sh 5000 3 128          # APPLICATIONS NODES CONCURRENCY
#   KILL=0 bash benches/cluster.sh 3000 1       # throughput on PostgreSQL, nothing killed
#   LATENCY_MS=100 bash benches/cluster.sh      # registries that take 100 ms to answer
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
# Three nodes, ss2 and the submitters hold many connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

cargo bench -q --bench cluster -- "$@"
