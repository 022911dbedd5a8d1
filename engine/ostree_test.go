package engine

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

type span struct{ a, b int64 }

// TestOSTreeAgainstSlice checks rank, select and totals
// of the treap against a sorted slice, through random inserts, updates
// and deletes.
func TestOSTreeAgainstSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	tr := newOSTree[int64, span](cmp.Compare[int64])
	ref := map[int64]struct {
		w int64
		s span
	}{}
	for step := 0; step < 20000; step++ {
		k := r.Int64N(500)
		if r.IntN(3) == 0 {
			tr.Delete(k)
			delete(ref, k)
		} else {
			a := r.Int64N(100)
			s := span{a, a + 1 + r.Int64N(50)}
			w := r.Int64N(5)
			if _, ok := ref[k]; !ok && r.IntN(2) == 0 {
				tr.Add(k, s, w) // absent: Add is Set without the search
			} else {
				tr.Set(k, s, w)
			}
			ref[k] = struct {
				w int64
				s span
			}{w, s}
		}
		if step%97 != 0 {
			continue
		}
		keys := make([]int64, 0, len(ref))
		var total int64
		for k, v := range ref {
			keys = append(keys, k)
			total += v.w
		}
		slices.Sort(keys)
		if tr.Len() != len(keys) || tr.Total() != total {
			t.Fatalf("step %d: len %d total %d, want %d %d", step, tr.Len(), tr.Total(), len(keys), total)
		}
		var cum int64
		for _, k := range keys {
			if got := tr.Rank(k); got != cum {
				t.Fatalf("rank(%d) = %d, want %d", k, got, cum)
			}
			for i := cum; i < cum+ref[k].w; i++ {
				if sk, _, before, ok := tr.Select(i); !ok || sk != k || before != cum {
					t.Fatalf("select(%d) = %d (before %d), want %d (before %d)", i, sk, before, k, cum)
				}
			}
			cum += ref[k].w
		}
	}
}

// TestOSTreeAddPresentPanics: Add of a key already in the tree, wherever
// the new node would land (at the root, inside, at a leaf), panics
// instead of linking a duplicate.
func TestOSTreeAddPresentPanics(t *testing.T) {
	tr := newOSTree[int64, int](cmp.Compare[int64])
	for k := range int64(64) {
		tr.Add(k, 0, 1)
	}
	for k := range int64(64) {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Add(%d) of a present key did not panic", k)
				}
			}()
			tr.Add(k, 1, 1)
		}()
	}
}
