package engine

import (
	"bytes"
	"strings"
	"testing"
)

// TestReferenceTableKept: the reference table a SetReferenceRates carries
// survives the journal codec, a snapshot and a restore, and a later
// command without one clears it; an oversized table changes nothing.
func TestReferenceTableKept(t *testing.T) {
	e := New(Config{})
	table := []byte("provider,gpu_model,...\naws,H100,6.88\n")
	set := func(tb testing.TB, seq uint64, tbl []byte) *Error {
		tb.Helper()
		c := Command{Seq: seq, Time: Time(seq) * Second, Kind: CmdSetReferenceRates,
			Rates: []ReferenceRate{{GPU: "h100-sxm", Provider: "aws", Price: 68800}}, RatesTable: tbl}
		// Through the journal's codec, as a recovery would see it.
		got, rest, err := DecodeCommand(AppendCommand(nil, &c))
		if err != nil || len(rest) != 0 || !bytes.Equal(got.RatesTable, tbl) {
			tb.Fatalf("codec: got %q (rest %d, err %v), want the table back", got.RatesTable, len(rest), err)
		}
		_, aerr := e.Apply(&got)
		return aerr
	}
	if err := set(t, 1, table); err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if got := restored.ReferenceTable(); !bytes.Equal(got, table) {
		t.Fatalf("after restore: table %q, want %q", got, table)
	}
	if restored.Hash() != e.Hash() {
		t.Fatalf("restored hash %s, live %s", restored.Hash(), e.Hash())
	}

	if err := set(t, 2, []byte(strings.Repeat("x", MaxRatesTable+1))); err == nil || err.Code != CodeInvalidCommand {
		t.Fatalf("oversized table: got %v, want %s", err, CodeInvalidCommand)
	}
	if !bytes.Equal(e.ReferenceTable(), table) || len(e.ReferenceRates()) != 1 {
		t.Fatal("an oversized table changed the reference state")
	}

	if err := set(t, 3, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.ReferenceTable(); got != nil {
		t.Fatalf("after a set without a table: %q, want none", got)
	}
}
