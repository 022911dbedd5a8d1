package pricing

import (
	"testing"

	"github.com/gpux/gpux/engine"
)

// BenchmarkRowsAllMarkets builds the /v1/prices rows of the default
// catalogue (8 GPUs × 3 regions) from the built-in table.
func BenchmarkRowsAllMarkets(b *testing.B) {
	markets := engine.Catalogue(engine.DefaultGPUs, engine.DefaultRegions)
	board := NewBoard(Default(), markets)
	live := Live{BestAsk: 26000, HasAsk: true}
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range markets {
			board.Row(m.ID, live, boardT0, nil)
		}
	}
}
