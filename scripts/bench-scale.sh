#!/usr/bin/env bash
# Two large operations, timed end to end through the spicegate CLI against
# `spicegate serve` on each datastore (a fresh store each time):
#   1. a bulk seed of about 1,000,000 relationships (`spicegate seed`):
#      $ORGS organizations x $MEMBERS members x $DATASETS datasets;
#   2. `spicegate org delete` (DeleteOrganization, as the support account)
#      of one of those organizations: $DATASETS datasets, $MEMBERS API
#      tokens and a deployment, in a store that holds all the others;
#      then the other organizations are checked to be whole.
# Prints the time and rate of each, and the relationships left.
#   bash scripts/postgres.sh      # first, for the postgres engine (as root)
#   bash scripts/bench-scale.sh   # ENGINES=sqlite to leave PostgreSQL out;
#                                 # ORGS=2 DATASETS=1000 for a quick look
# The figures and their reading are in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/serve-engine.sh
ENGINES=${ENGINES:-postgres sqlite}
ORGS=${ORGS:-5} MEMBERS=${MEMBERS:-50} DATASETS=${DATASETS:-100000}
OUT=${OUT:-/tmp/spicegate-bench-scale}
mkdir -p "$OUT"
go build -o "$OUT/spicegate" ./cmd/spicegate
sg=$OUT/spicegate
grpc=127.0.0.1:15751 http=127.0.0.1:15780 key=benchscale
conn=(--spicedb-endpoint $grpc --preshared-key $key)
{ date -u +"date %Y-%m-%dT%H:%M:%SZ"; echo "host $(nproc) cores; $(go version)"; } | tee "$OUT/meta.txt"
generated=$("$sg" seed --generate --orgs "$ORGS" --members "$MEMBERS" --datasets "$DATASETS" --out "$OUT/seed.yaml")
echo "$generated" | tee -a "$OUT/meta.txt"
total=$(echo "$generated" | sed -E 's/.* ([0-9]+) relationships$/\1/')
now() { date +%s.%N; } # seconds, with nanoseconds
allowed() { "$sg" check "$@" "${conn[@]}" --error-on-no-permission >/dev/null 2>&1; }

for engine in $ENGINES; do
	start_serve "$engine" spicegate_scale "$OUT" $grpc $http $key

	t0=$(now)
	"$sg" seed "$OUT/seed.yaml" "${conn[@]}" 2>"$OUT/seed-$engine.err" || { cat "$OUT/seed-$engine.err" >&2; exit 1; }
	t1=$(now)
	awk -v e="$engine" -v n="$total" -v a="$t0" -v b="$t1" \
		'BEGIN { printf "== %s: seed of %d relationships: %.1f s, %.0f relationships/s\n", e, n, b-a, n/(b-a) }'

	if [[ $engine == postgres ]]; then
		# What autovacuum does within a minute or so of a bulk load; until
		# then PostgreSQL plans with the statistics of an empty table.
		su postgres -c "psql -q -d spicegate_scale -c 'ANALYZE relation_tuple'"
	fi
	sleep 6 # past the revision quantization window
	victim=org00001 other=org$(printf %05d "$ORGS")
	per_org=$(( (total - 2) / ORGS ))
	last=$(printf %06d "$DATASETS")
	allowed user:$victim-u0001 view dataset:$victim-d$last
	t0=$(now)
	"$sg" org delete $victim --as user:support "${conn[@]}" >/dev/null
	t1=$(now)
	awk -v e="$engine" -v n="$DATASETS" -v m="$MEMBERS" -v r="$per_org" -v a="$t0" -v b="$t1" \
		'BEGIN { printf "== %s: org delete of %d datasets, %d API tokens and a deployment (about %d relationships): %.1f s, %.0f relationships/s\n", e, n, m, r, b-a, r/(b-a) }'

	# The deleted organization is gone, the others are whole.
	if allowed user:$victim-u0001 view dataset:$victim-d$last; then
		echo "FAIL: $victim's dataset still viewable" >&2
		exit 1
	fi
	allowed user:$other-u0001 view dataset:$other-d$last
	[[ $engine != sqlite ]] || du -cb "$OUT"/sg.db* | awk 'END {printf "file (with its WAL): %.0f MB\n", $1/1e6}'
	ps -o rss= -p $pid | awk '{printf "server RSS: %d MiB\n", $1/1024}'
	kill $pid
	wait $pid 2>/dev/null || true
done
