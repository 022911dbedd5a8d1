//go:build race

package engine

// raceEnabled shrinks the longest tests under the race detector (about
// ten times slower), so go test -race ./... stays inside CI's budget.
const raceEnabled = true
