#!/usr/bin/env bash
# Compares builds or settings of `spicegate serve` by the server's CPU per
# check, beside the median, on one of the peer harness's single-check
# workloads (../shared/peerbench: 100 organizations x 50 members x 1,000
# datasets, its gRPC client over loopback TCP, one check after another), in
# turn, $ROUNDS rounds. A client calling one check after another waits for
# about the server's CPU per check (the process runs it on one processor),
# and the CPU varies less from run to run than the latency does.
#   bash scripts/bench-peer-cpu.sh old=/tmp/spicegate-old new=/tmp/spicegate
#   WL=deploy N=20000 ROUNDS=4 bash scripts/bench-peer-cpu.sh ...
# A variant is NAME=BINARY, then ENV=VALUE settings for its serve. Each run
# starts the variant's serve on a fresh SQLite file; the harness loads its
# data, waits for the quantized revision (the server idle), then makes
# $WARM checks and $N measured ones. The CPU counted is the server's from
# the end of that idle wait to the end: the $WARM + $N checks. Figures and
# their reading: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
(($# > 0)) || { echo "usage: $0 NAME=BINARY['ENV=VALUE ...'] ..." >&2; exit 2; }
ROUNDS=${ROUNDS:-3} N=${N:-20000} WARM=${WARM:-4000} WL=${WL:-view}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bench-peer-cpu.XXXXXX")}
source scripts/peer-serve.sh
ticks=$(getconf CLK_TCK)
sampler=
trap '[[ -z $sampler ]] || kill $sampler 2>/dev/null || true; [[ -z $pid ]] || kill $pid 2>/dev/null || true' EXIT

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks

for round in $(seq 1 "$ROUNDS"); do
	for variant in "$@"; do
		peer_serve "$variant"
		(while cpu $pid 2>/dev/null; do sleep 0.25; done) >"$OUT/samples.txt" &
		sampler=$!
		line=$("$OUT/spicedb-bench" -endpoint $grpc -key $key -name "$name" -no-schema -only "$WL" -modes seq \
			"-${WL}n" "$N" "-${WL}warm" "$WARM" -out "$OUT/results.jsonl" 2>&1 | grep -E " seq ")
		end=$(cpu $pid)
		kill $sampler 2>/dev/null || true
		wait $sampler 2>/dev/null || true
		sampler=
		# The end of the longest stretch without CPU (under 2 ticks in 0.25 s):
		# the harness's wait for the quantized revision, before the checks.
		start=$(awk '{v[NR] = $1} END {
			best = 0; at = v[1]; i = 1
			while (i < NR) { j = i; while (j < NR && v[j+1] - v[j] <= 1) j++; if (j - i > best) { best = j - i; at = v[j] }; i = j + 1 }
			print at }' "$OUT/samples.txt")
		p50=$(grep -oE "p50= *[0-9.]+us" <<<"$line" | tr -d ' ')
		us=$(((end - start) * 1000000 / ticks / (N + WARM)))
		echo "$name round $round: $WL $p50 server CPU per check ${us}us" | tee -a "$OUT/results.txt"
		peer_stop
	done
done
echo "results: $OUT/results.txt"
