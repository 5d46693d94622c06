#!/usr/bin/env bash
# Compares builds or settings of `spicegate serve` under the same load, in
# turn, $ROUNDS rounds: the generated data (100 organizations x 50 members
# x 1,000 datasets) is loaded once into a SQLite file; each run starts one
# variant's serve on that file, warms it for 6 s, sends $RATE requests/s of
# $MIX (default: checks only) through the HTTP API for $DURATION with
# requests no earlier run sent (a repeated request finds its answer in
# SpiceDB's dispatch cache), and prints the latency percentiles, the
# server's CPU time and its resident memory.
#   bash scripts/bench-ab.sh old=/tmp/spicegate-old new=/tmp/spicegate 'gogc100=/tmp/spicegate GOGC=100'
#   MIX=add_member=1,remove_member=1,create_token=1,delete_token=1,create_invite=1 RATE=50 bash scripts/bench-ab.sh ...
# A variant is NAME=BINARY, then ENV=VALUE settings for its serve (every
# serve flag is a SPICEGATE_ variable too). ENGINE=postgres runs them on
# PostgreSQL instead (the database spicegate_ab, created again; bash
# scripts/postgres.sh first), with $PG_PARAMS appended to the URI:
#   ENGINE=postgres PG_PARAMS='&default_query_exec_mode=cache_statement' RATE=1000 \
#     bash scripts/bench-ab.sh r20=/tmp/sg 'r4=/tmp/sg SPICEGATE_DATASTORE_CONN_POOL_READ_MAX_OPEN=4'
# The load tool is built from this tree; the lines are also in
# $OUT/results.txt. Figures and their reading: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/serve-engine.sh
(($# > 0)) || { echo "usage: $0 NAME=BINARY['ENV=VALUE ...'] ..." >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-800}
DURATION=${DURATION:-10s}
MIX=${MIX:-check=1}
ENGINE=${ENGINE:-sqlite}
bench_setup bench-ab
case $ENGINE in
sqlite) store=(--datastore-path "$OUT/sg.db") ;;
postgres) store=(--datastore-engine postgres --datastore-conn-uri
	"postgres://spicegate:spicegate@127.0.0.1:5432/spicegate_ab?sslmode=disable${PG_PARAMS:-}") ;;
*) echo "ENGINE is sqlite or postgres" >&2; exit 2 ;;
esac
grpc=127.0.0.1:15751 http=127.0.0.1:15780 key=benchab token=benchab0123456789
hz=$(getconf CLK_TCK)
pid=
trap '[[ -z $pid ]] || kill $pid 2>/dev/null || true' EXIT

serve() { # BINARY [ENV=VALUE...]: serve on the file; sets $pid
	local bin=$1
	shift
	env "$@" "$bin" serve --no-seed "${store[@]}" --grpc-addr $grpc --http-addr $http \
		--preshared-key $key --http-token admin:$token >"$OUT/serve.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 120); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && return; sleep 0.5; done
	echo "serve did not become ready: $OUT/serve.log" >&2
	return 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

rm -f "$OUT"/sg.db*
if [[ $ENGINE == postgres ]]; then
	su postgres -c "psql -qc 'DROP DATABASE IF EXISTS spicegate_ab' -c 'CREATE DATABASE spicegate_ab OWNER spicegate'"
fi
serve "$sg" SPICEGATE_DATASTORE_MIGRATE=true
echo "== loading the data"
"$sg" loadtest --setup --spicedb-endpoint $grpc --preshared-key $key "${SCALE[@]}" --rate 1 --duration 1s >/dev/null
stop
rm -f "$OUT/results.txt"
{ date -u +"date %Y-%m-%dT%H:%M:%SZ"; echo "host $(nproc) cores; $ENGINE; $MIX at $RATE/s for $DURATION; ${SCALE[*]}"; } | tee "$OUT/meta.txt"
seed=1000
for round in $(seq 1 "$ROUNDS"); do
	for variant in "$@"; do
		read -r first settings <<<"$variant"
		name=${first%%=*} bin=${first#*=}
		# shellcheck disable=SC2086 # settings are words on purpose
		serve "$bin" $settings
		sleep 6 # past the revision quantization window of a new server
		"$sg" loadtest --http "http://$http" --token $token "${SCALE[@]}" --mix check=1 --rate 300 --duration 6s --seed $((seed++)) >/dev/null 2>&1
		cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		line=$("$sg" loadtest --http "http://$http" --token $token "${SCALE[@]}" --mix "$MIX" --rate "$RATE" --duration "$DURATION" --seed $((seed++)) 2>/dev/null | grep '^all')
		cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		rss=$(ps -o rss= -p "$pid")
		stop
		awk -v n="$name" -v r="$round" -v c=$((cpu1 - cpu0)) -v hz="$hz" -v rss="$rss" -v l="$line" \
			'BEGIN { split(l, f, " +"); printf "%-16s round %d  p50 %8s  p90 %8s  p99 %8s  p99.9 %8s  errors %s  server CPU %.2f s  RSS %d MiB\n", n, r, f[4], f[5], f[7], f[8], f[3], c / hz, rss / 1024 }' |
			tee -a "$OUT/results.txt"
	done
done
