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
PEER=${PEERBENCH:-../shared/peerbench}
ROUNDS=${ROUNDS:-2}
ONLY=${ONLY:-deploy,view,delete}
# The iterations of run-spicegate.sh's single checks unless ITERS says otherwise.
read -ra ITERS <<<"${ITERS:--deployn 2000 -deploywarm 200 -viewn 1000 -viewwarm 100 -deleten 500 -deletewarm 50}"
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bench-peer-ab.XXXXXX")}
mkdir -p "$OUT"
(cd "$PEER/spicedb" && go build -o "$OUT/spicedb-bench" .)
grpc=127.0.0.1:15651 http=127.0.0.1:15680 key=benchpeer
pid=
trap '[[ -z $pid ]] || kill $pid 2>/dev/null || true' EXIT

for round in $(seq 1 "$ROUNDS"); do
	for variant in "$@"; do
		read -r spec settings <<<"$variant"
		name=${spec%%=*} bin=${spec#*=}
		rm -f "$OUT"/sg.db*
		# shellcheck disable=SC2086 # settings are words on purpose
		env ${settings:-} "$bin" serve --no-seed --datastore-path "$OUT/sg.db" --grpc-addr $grpc \
			--http-addr $http --preshared-key $key >"$OUT/serve-$name.log" 2>&1 &
		pid=$!
		for _ in $(seq 1 120); do curl -fsS "http://$http/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
		"$OUT/spicedb-bench" -endpoint $grpc -key $key -name "$name" -no-schema -only "$ONLY" "${ITERS[@]}" \
			-out "$OUT/results.jsonl" 2>&1 | grep -E " (seq|par8) " | sed "s/^/$name round $round: /" | tee -a "$OUT/results.txt"
		kill $pid
		wait $pid 2>/dev/null || true
		pid=
	done
done
echo "results: $OUT/results.txt"
