#!/usr/bin/env bash
# Compares builds or settings of `spicegate serve` on the peer harness's
# single-check workloads (../shared/peerbench: 100 organizations x 50
# members x 1,000 datasets, its gRPC client over loopback TCP), in turn,
# $ROUNDS rounds: each run starts one variant's serve on a fresh SQLite
# file, lets the harness load its data, and prints the harness's lines
# (mean, p50, p99 and checks/s, sequential and with 8 goroutines).
#   bash scripts/bench-peer-ab.sh old=/tmp/spicegate-old new=/tmp/spicegate 'one=/tmp/spicegate GOMAXPROCS=1'
#   ONLY=view ROUNDS=3 bash scripts/bench-peer-ab.sh ...
#   ITERS='-viewn 10000 -viewwarm 500' ONLY=view bash scripts/bench-peer-ab.sh ...
# A variant is NAME=BINARY, then ENV=VALUE settings for its serve. The
# lines are also in $OUT/results.txt. Figures and their reading:
# BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
(($# > 0)) || { echo "usage: $0 NAME=BINARY['ENV=VALUE ...'] ..." >&2; exit 2; }
ROUNDS=${ROUNDS:-2}
ONLY=${ONLY:-deploy,view,delete}
# The iterations of run-spicegate.sh's single checks unless ITERS says otherwise.
read -ra ITERS <<<"${ITERS:--deployn 2000 -deploywarm 200 -viewn 1000 -viewwarm 100 -deleten 500 -deletewarm 50}"
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bench-peer-ab.XXXXXX")}
source scripts/peer-serve.sh
trap '[[ -z $pid ]] || kill $pid 2>/dev/null || true' EXIT

for round in $(seq 1 "$ROUNDS"); do
	for variant in "$@"; do
		peer_serve "$variant"
		"$OUT/spicedb-bench" -endpoint $grpc -key $key -name "$name" -no-schema -only "$ONLY" "${ITERS[@]}" \
			-out "$OUT/results.jsonl" 2>&1 | grep -E " (seq|par8) " | sed "s/^/$name round $round: /" | tee -a "$OUT/results.txt"
		peer_stop
	done
done
echo "results: $OUT/results.txt"
