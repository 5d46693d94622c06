#!/usr/bin/env bash
# Measures the Go facade against the raw SpiceDB client, on the same
# in-process SpiceDB (the memory engine; SPICEGATE_TEST_ENGINE=memdb for
# SpiceDB's own memory datastore), connection and generated data, in
# the same run, and prints facade/raw ratios of time per operation.
#   bash scripts/bench.sh [count]     (default: 5 runs of each benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
out=$(go test -run '^$' -bench '^Benchmark(Check|CheckBulk100|LookupResources200)$' -benchtime 2s -count "$count" ./client/)
echo "$out" | grep -E '^Benchmark'
echo
echo "$out" | awk '
	/^Benchmark/ {
		split($1, p, "/"); name = p[1]; sub(/-[0-9]+$/, "", p[2]); kind = p[2]
		sum[name, kind] += $3; n[name, kind]++; names[name] = 1
	}
	END {
		printf "%-28s %12s %12s %8s\n", "benchmark", "raw ns/op", "facade ns/op", "ratio"
		for (name in names) {
			r = sum[name, "raw"] / n[name, "raw"]; f = sum[name, "facade"] / n[name, "facade"]
			printf "%-28s %12.0f %12.0f %8.3f\n", name, r, f, f / r
		}
	}'
