# Sourced by bench-peer-ab.sh and bench-peer-cpu.sh: what both do around
# the peer harness's client (../shared/peerbench/spicedb), so that they
# measure the same way. Expects $OUT; sets PEER, grpc, http, key, pid.
PEER=${PEERBENCH:-../shared/peerbench}
mkdir -p "$OUT"
(cd "$PEER/spicedb" && go build -o "$OUT/spicedb-bench" .)
grpc=127.0.0.1:15651 http=127.0.0.1:15680 key=benchpeer
pid=

# peer_serve NAME=BINARY['ENV=VALUE ...']: starts the variant's serve on a
# fresh SQLite file in $OUT, logging to $OUT/serve-NAME.log, and waits
# until it answers; sets name and pid.
peer_serve() {
	local spec settings bin
	read -r spec settings <<<"$1"
	name=${spec%%=*} bin=${spec#*=}
	rm -f "$OUT"/sg.db*
	# shellcheck disable=SC2086 # settings are words on purpose
	env ${settings:-} "$bin" serve --no-seed --datastore-path "$OUT/sg.db" --grpc-addr $grpc \
		--http-addr $http --preshared-key $key >"$OUT/serve-$name.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 120); do curl -fsS "http://$http/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
}

# peer_stop stops the serve peer_serve started.
peer_stop() {
	kill $pid
	wait $pid 2>/dev/null || true
	pid=
}
