//go:build race

package client_test

// raceEnabled reports a build with the race detector, which makes the
// large tests about ten times slower: they run at a tenth of their size.
const raceEnabled = true
