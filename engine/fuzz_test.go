package engine

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// byteSource turns fuzz input into the random choices of the command
// generator, so the fuzzer steers whole command sequences.
// Each draw mixes the next input word with a counter: a constant source
// would make rand's rejection sampling loop forever.
type byteSource struct {
	b []byte
	n uint64
}

func (s *byteSource) Uint64() uint64 {
	var buf [8]byte
	k := copy(buf[:], s.b)
	s.b = s.b[k:]
	s.n++
	return splitmix(binary.LittleEndian.Uint64(buf[:]) ^ s.n*0x9e3779b97f4a7c15)
}

// FuzzCommands applies generator-built command sequences chosen by the
// fuzzer and checks every invariant after each command, plus a snapshot
// round trip at the end. Run: go test -fuzz FuzzCommands -fuzztime 30s ./engine/
func FuzzCommands(f *testing.F) {
	f.Add([]byte("seed"))
	f.Add(make([]byte, 256))
	f.Add([]byte{0xff, 0x10, 0x42, 0x99, 0x07, 0x00, 0x63, 0x21, 0x13, 0x88, 0xfe, 0x01, 0x55, 0xaa, 0x30, 0x31})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		g := newGen(t, 0, Config{FeeBps: 30})
		g.r = rand.New(&byteSource{b: data})
		steps := len(data)/4 + 1
		for i := 0; i < steps; i++ {
			g.step()
			checkInvariants(t, g.h.e, i == steps-1)
		}
		r, err := Restore(g.h.e.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if r.Hash() != g.h.e.Hash() {
			t.Fatal("snapshot round trip changed the state")
		}
	})
}
