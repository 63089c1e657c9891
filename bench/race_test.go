//go:build race

package bench

// raceEnabled: the race detector is on, and allocation counts mean
// nothing (sync.Pool drops a share of its items at random under it).
const raceEnabled = true
