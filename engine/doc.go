// Package engine is the exchange's deterministic state machine: accounts and
// their ledger, reserved GPU-hour matching, the per-market spot auction, and
// the events every change produces.
//
// The engine is a pure function of its command sequence. It does no I/O,
// reads no clock, starts no goroutines and uses no randomness: time and new
// ids arrive on each Command, stamped by the sequencer. Replaying the same
// commands gives byte-identical snapshots and the same events. It must be
// driven from one goroutine; callers that read concurrently guard it with a
// lock. It imports nothing of gpux.
package engine
