// Module driverbench compares two pure-Go SQLite drivers on the access paths
// of the SQLite datastore. It is a module of its own so that the alternative
// driver never enters Spicegate's go.mod. Run it from this directory:
//
//	go test -run '^$' -bench . -benchtime 2s .
// Module driverbench compares two pure-Go SQLite drivers on the access paths
// of the SQLite datastore. It is a module of its own so that the alternative
// driver never enters Spicegate's go.mod: run it from this directory with
//
//	go test -run '^$' -bench . -benchtime 2s .
module github.com/spicegate/spicegate/datastore/sqlite/driverbench

go 1.26.0

require (
	github.com/ncruces/go-sqlite3 v0.37.0
	modernc.org/sqlite v1.59.0
)

require (
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-sqlite3-wasm/v6 v6.5.35401 // indirect
	github.com/ncruces/go-strftime v1.0.0 // indirect
	github.com/ncruces/julianday v1.0.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/sys v0.49.0 // indirect
	modernc.org/libc v1.75.7 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)
