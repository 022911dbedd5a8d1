package store

// MemoryLen reports how many batches m holds, for tests that check trimming
// without going through Replay.
func MemoryLen(m *MemoryJournal) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.batches)
}
