// Package faults is the fault suite: it builds the real gpuxd binary, runs
// it as a child process against private redis-server processes on free
// loopback ports, drives mixed load through the client package, and then
// breaks things the way production does — kill -9 of gpuxd, Redis killed
// and restarted, Redis frozen with SIGSTOP, Redis refusing writes (maxmemory
// reached, AOF on a full disk), SIGTERM under load.
//
// After each fault it checks, from Redis alone and independently of gpuxd,
// that every acknowledged command is journaled, that the state gpuxd
// recovers equals a replay of the journal (state hash), and that money is
// conserved to the tick. docs/DURABILITY.md says what each test proves and
// the figures the suite produced.
//
// The package holds no production code; everything is in its tests. The
// short form runs in CI; GPUX_FAULTS_LONG=1 runs more cycles and longer
// load. It never touches the shared Redis at 127.0.0.1:6379.
package faults
