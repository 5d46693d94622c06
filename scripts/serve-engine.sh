# Sourced by the bench scripts.
#
# bench_setup NAME: $OUT (default /tmp/spicegate-NAME) exists, this tree's
# spicegate is built into it as $sg, and $SCALE is the generated data's size
# (ORGS, MEMBERS, DATASETS; default 100 x 50 x 1,000).
bench_setup() {
	OUT=${OUT:-/tmp/spicegate-$1}
	SCALE=(--orgs "${ORGS:-100}" --members "${MEMBERS:-50}" --datasets "${DATASETS:-1000}")
	mkdir -p "$OUT"
	go build -o "$OUT/spicegate" ./cmd/spicegate
	sg=$OUT/spicegate
}

# start_serve ENGINE DB_NAME OUT GRPC HTTP
# KEY [serve flags...] starts `$sg serve` on a fresh store of ENGINE (the
# SQLite file $OUT/sg.db, or the PostgreSQL database DB_NAME, dropped and
# created again; $PG_PARAMS, e.g. '&default_query_exec_mode=cache_statement',
# is appended to its URI), logging to $OUT/serve-ENGINE.log, sets $pid,
# kills it on exit, and returns once its HTTP API is ready.
start_serve() {
	local engine=$1 db=$2 out=$3 grpc=$4 http=$5 key=$6
	shift 6
	local args=(--datastore-engine "$engine")
	case $engine in
	sqlite) rm -f "$out"/sg.db*; args+=(--datastore-path "$out/sg.db") ;;
	postgres)
		su postgres -c "psql -qc 'DROP DATABASE IF EXISTS $db' -c 'CREATE DATABASE $db OWNER spicegate'"
		args+=(--datastore-conn-uri "postgres://spicegate:spicegate@127.0.0.1:5432/$db?sslmode=disable${PG_PARAMS:-}" --datastore-migrate) ;;
	esac
	"$sg" serve --no-seed --grpc-addr "$grpc" --http-addr "$http" --preshared-key "$key" "${args[@]}" "$@" \
		>"$out/serve-$engine.log" 2>&1 &
	pid=$!
	trap 'kill $pid 2>/dev/null || true' EXIT
	for _ in $(seq 1 120); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && return; sleep 0.5; done
	echo "serve on $engine did not become ready: $out/serve-$engine.log" >&2
	return 1
}
