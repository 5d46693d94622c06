#!/usr/bin/env bash
# Runs `spicegate serve` on each datastore (a fresh store each time), loads
# the generated 100 organizations x 50 members x 1,000 datasets, and sends
# two open-loop loads through the HTTP API for $DURATION each: checks only
# at $CHECK_RATE requests/s, then the default mix (10% writes) at
# $MIX_RATE requests/s. Writes every
# result as JSON to $OUT, prints the text reports, and draws the
# percentiles of both loads with scripts/benchchart into $CHARTS (docs/).
#   bash scripts/postgres.sh      # first, for the postgres engine (as root)
#   bash scripts/bench-load.sh    # ENGINES="sqlite memory" to leave PostgreSQL out
# The figures and their reading are in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/serve-engine.sh
ENGINES=${ENGINES:-sqlite postgres memory}
CHECK_RATE=${CHECK_RATE:-1000}
MIX_RATE=${MIX_RATE:-300}
DURATION=${DURATION:-20s}
CHARTS=${CHARTS:-docs} # the README's charts; CHARTS=/tmp/x for a trial run
bench_setup bench-load
grpc=127.0.0.1:15651 http=127.0.0.1:15680 key=benchload token=benchload0123456789
{ date -u +"date %Y-%m-%dT%H:%M:%SZ"; echo "host $(nproc) cores; $(go version)"; echo "checks at $CHECK_RATE/s, mix at $MIX_RATE/s, for $DURATION each; ${SCALE[*]}"; } | tee "$OUT/meta.txt"
for engine in $ENGINES; do
	start_serve "$engine" spicegate_load "$OUT" $grpc $http $key --http-token admin:$token
	echo "== $engine: loading the data"
	"$sg" loadtest --setup --spicedb-endpoint $grpc --preshared-key $key "${SCALE[@]}" --rate 1 --duration 1s >/dev/null
	sleep 6 # past the revision quantization window, so every read sees the whole load
	for load in checks mixed; do
		mix=() rate=$MIX_RATE
		[[ $load == mixed ]] || mix=(--mix check=1) rate=$CHECK_RATE
		echo "== $engine: $load at $rate/s for $DURATION"
		"$sg" loadtest --http "http://$http" --token $token "${SCALE[@]}" "${mix[@]}" --rate "$rate" --duration "$DURATION" \
			-o json >"$OUT/$load-$engine.json"
		"$sg" loadtest --http "http://$http" --token $token "${SCALE[@]}" "${mix[@]}" --rate 1 --duration 1s >/dev/null # settle
		python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("sent %d errors %d throughput %.0f/s" % (r["sent"], r["errors"], r["throughput"])); [print("%-14s p50 %7.2f  p95 %7.2f  p99 %7.2f  max %8.2f ms" % (o["op"], o["p50_ms"], o["p95_ms"], o["p99_ms"], o["max_ms"])) for o in r["operations"]]' "$OUT/$load-$engine.json"
	done
	ps -o rss= -p $pid | awk '{printf "server RSS after the loads: %d MiB\n", $1/1024}'
	kill $pid
	wait $pid 2>/dev/null || true
done
for load in checks mixed; do
	runs=()
	for engine in $ENGINES; do runs+=("$engine=$OUT/$load-$engine.json"); done
	what="checks only, $CHECK_RATE/s"
	[[ $load == checks ]] || what="default mix (10% writes), $MIX_RATE/s"
	go run ./scripts/benchchart -o "$CHARTS/latency-$load.svg" \
		-title "spicegate serve, HTTP, $what for $DURATION, $(date -u +%Y-%m-%d)" "${runs[@]}"
	echo "chart: $CHARTS/latency-$load.svg"
done
