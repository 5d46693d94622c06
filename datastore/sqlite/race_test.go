//go:build race

package sqlite_test

// raceEnabled reports a build with the race detector.
const raceEnabled = true
