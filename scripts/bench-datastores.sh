#!/usr/bin/env bash
# Measures the datastores of the embedded SpiceDB side by side, in one run:
# the SQLite datastore (datastore/sqlite), SpiceDB's memory datastore, and
# SpiceDB's PostgreSQL datastore (when PostgreSQL answers), each behind a
# real SpiceDB server (gRPC over an in-memory network), on Spicegate's schema
# and the data of the peer benchmark: 100 organizations x 50 members x 1,000
# datasets (205,000 relationships).
#   bash scripts/postgres.sh            # first, for the PostgreSQL column (as root)
#   bash scripts/bench-datastores.sh    # prints each benchmark, then a table of medians
# SCALE=small runs 10 organizations x 100 datasets instead (a quick look).
# The figures and their reading are in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
uri=${SPICEGATE_BENCH_POSTGRES_URI:-postgres://spicegate:spicegate@127.0.0.1:5432/spicegate?sslmode=disable}
if psql "$uri" -qtc 'select 1' >/dev/null 2>&1; then
	export SPICEGATE_BENCH_POSTGRES_URI=$uri
else
	echo "PostgreSQL does not answer at $uri: measuring sqlite and memory only" >&2
fi
[[ ${SCALE:-full} == small ]] || export SPICEGATE_BENCH_FULL=1
# One process per engine: the memory datastore's heap (gigabytes at this
# size) would otherwise slow the others' measurements through the garbage
# collector.
engines="sqlite memory"
[[ -z ${SPICEGATE_BENCH_POSTGRES_URI:-} ]] || engines="$engines postgres"
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
for engine in $engines; do
	go test -run '^$' -bench "(CheckDatasetView|CheckOrgDeploy|BulkCheck100Datasets|LookupResourcesDatasets)/$engine" \
		-benchtime 1000x -timeout 2h ./datastore/sqlite/ 2>&1 | tee "$results/$engine.txt"
done
go test -run '^$' -bench 'QueriesPerCheck' -benchtime 1000x -timeout 2h ./datastore/sqlite/ 2>&1 | grep -E '^Benchmark'
# The SQLite file alone: bulk import through SpiceDB and the file size per
# relationship, then (full size only) the cold start on 1,000,000 relationships.
once='ImportBulkRelationships'
[[ ${SCALE:-full} == small ]] || once="$once|ColdStart"
go test -run '^$' -bench "$once" -benchtime 1x -timeout 2h ./datastore/sqlite/ 2>&1 | grep -E '^Benchmark|bench_test'
echo
cat "$results"/*.txt | awk '
	/^Benchmark/ && /p50-ms/ {
		full = $1; sub(/-[0-9]+$/, "", full); n = split(full, p, "/")
		name = (n > 2 ? p[1] "/" p[3] : p[1]); engine = p[2]
		for (i = 1; i <= NF; i++) if ($(i+1) == "p50-ms") v = $i
		p50[name, engine] = v; names[name] = 1
	}
	END {
		printf "%-52s %10s %10s %10s %12s\n", "p50 (ms)", "sqlite", "memory", "postgres", "memory/sqlite"
		for (name in names) {
			s = p50[name, "sqlite"]; m = p50[name, "memory"]; g = p50[name, "postgres"]
			printf "%-52s %10s %10s %10s %12.1f\n", name, s, m, (g == "" ? "-" : g), (s > 0 ? m / s : 0)
		}
	}'
