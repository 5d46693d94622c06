// Package integration runs Spicegate end to end against real servers:
// PostgreSQL, the spicegate binary, and spicedb binaries built from the
// pinned module. The tests carry the build tag integration:
//
//	bash scripts/postgres.sh
//	go test -tags integration -v ./integration/
//
// Every test starts and stops its own processes, on a fresh database, and
// cleans up even when it fails.
package integration
