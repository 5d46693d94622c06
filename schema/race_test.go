//go:build race

package schema_test

// raceEnabled reports a build with the race detector. The mutation tests
// have no concurrency of their own to check and run about four times
// slower under it, so they sample the matrix there (the whole of it runs
// without the detector, in .ci/run).
const raceEnabled = true
