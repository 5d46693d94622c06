//go:build !race

package schema_test

// raceEnabled reports a build with the race detector.
const raceEnabled = false
