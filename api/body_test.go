package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net"
	"runtime"
	"testing"
)

// TestDecodeLimitedMemory: decoding a bomb allocates about the limit, not
// what the bomb would unpack to. Fiber's own gunzip, which the API used
// before, allocated the whole 64 MiB.
func TestDecodeLimitedMemory(t *testing.T) {
	const unpacked = 64 << 20
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range unpacked / len(zeros) {
		_, _ = w.Write(zeros)
	}
	_ = w.Close()
	bomb := buf.Bytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeLimited("gzip", bomb, BodyLimit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("got %v, want errBodyTooLarge", err)
	}
	// io.ReadAll grows its buffer geometrically; the decoder keeps a 32 KiB
	// window. 8 MiB is far below the 64 MiB an unbounded decode allocates.
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("decoding a %d-byte bomb of %d bytes allocated %d bytes", len(bomb), unpacked, got)
	if got > 8<<20 {
		t.Errorf("allocated %d bytes decoding a %d-byte bomb, want at most %d", got, len(bomb), 8<<20)
	}
}

func TestDecodeLimited(t *testing.T) {
	small := []byte(`{"a":1}`)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(small)
	_ = w.Close()
	tests := []struct {
		name, coding string
		raw          []byte
		limit        int
		want         []byte
		err          error
	}{
		{"gzip", "gzip", gz.Bytes(), 100, small, nil},
		{"exactly the limit", "gzip", gz.Bytes(), len(small), small, nil},
		{"one over", "gzip", gz.Bytes(), len(small) - 1, nil, errBodyTooLarge},
		{"unknown", "br", gz.Bytes(), 100, nil, errUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLimited(tt.coding, tt.raw, tt.limit)
			if !errors.Is(err, tt.err) || !bytes.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// countingConn counts the writes that reach the network.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

// TestCork: while corked, a connection's writes leave in one write, in
// order; a burst past corkLimit is written early rather than held.
func TestCork(t *testing.T) {
	cc := &countingConn{}
	tc := &trackedConn{Conn: cc}
	tc.cork()
	for _, s := range []string{"a", "bb", "ccc"} {
		if _, err := tc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if len(cc.writes) != 0 {
		t.Fatalf("corked writes reached the conn: %q", cc.writes)
	}
	if err := tc.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 1 || string(cc.writes[0]) != "abbccc" {
		t.Fatalf("got writes %q, want one \"abbccc\"", cc.writes)
	}
	_, _ = tc.Write([]byte("d"))
	if len(cc.writes) != 2 || string(cc.writes[1]) != "d" {
		t.Fatalf("uncorked write: got %q", cc.writes)
	}
	tc.cork()
	_, _ = tc.Write(make([]byte, corkLimit))
	if len(cc.writes) != 3 {
		t.Fatalf("a write past corkLimit was held: %d writes", len(cc.writes))
	}
	_ = tc.uncork()
	if len(cc.writes) != 3 {
		t.Fatalf("uncork wrote an empty buffer: %d writes", len(cc.writes))
	}
}
