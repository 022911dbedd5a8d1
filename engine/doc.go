// Package engine is the exchange's deterministic state machine: accounts and
// their ledger, reserved GPU-hour matching, the per-market spot auction, and
// the events every change produces.
//
// The engine is a pure function of its command sequence. It does no I/O,
// reads no clock, starts no goroutines and uses no randomness: time and new
// ids arrive on each Command, stamped by the sequencer. Replaying the same
// commands gives byte-identical snapshots and the same events (ApplyReplay
// gives the same state without building the events). It must be driven
// from one goroutine; callers that read concurrently guard it with a lock.
// It imports nothing of gpux.
//
// It holds only the live market: accounts, open bids, active listings with
// their fills, spot state, pegs and the idempotency keys of the last 24 h
// of engine time. A bid or listing that can no longer change leaves with
// the event that closed it (EvBidClosed, EvListingClosed), which carries
// its final state to the read side (package history), so memory and
// snapshot size follow the market's size, not its age. Every money
// movement is an EvLedger line, and every amount stays within the bounds
// of money.go.
package engine
