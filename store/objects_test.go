package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/gpux/gpux/store"
)

func TestObjects(t *testing.T) {
	ctx := context.Background()
	forEachReadModels(t, store.ReadModelOptions{}, func(t *testing.T, rm store.ReadModelStore) {
		os, ok := rm.(store.ObjectStore)
		if !ok {
			t.Fatalf("%T is not an ObjectStore", rm)
		}
		var objs []store.Object
		for i := 1; i <= 7; i++ {
			st := "filled"
			if i%3 == 0 {
				st = "cancelled"
			}
			owner := "alice"
			if i == 5 {
				owner = "bob"
			}
			objs = append(objs, store.Object{Kind: "bid", ID: fmt.Sprint("b", i), Owner: owner, Status: st, Seq: uint64(i * 10), Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		}
		if err := os.PutObjects(ctx, objs[:4]); err != nil {
			t.Fatal(err)
		}
		// A replay stores the same objects again: no duplicates.
		if err := os.PutObjects(ctx, objs); err != nil {
			t.Fatal(err)
		}
		got, ok, err := os.GetObject(ctx, "bid", "b3")
		if err != nil || !ok || string(got.Data) != `{"n":3}` || got.Seq != 30 || got.Status != "cancelled" || got.Owner != "alice" {
			t.Fatalf("get b3: %+v %v %v", got, ok, err)
		}
		if _, ok, err := os.GetObject(ctx, "listing", "b3"); ok || err != nil {
			t.Fatalf("get of another kind: ok %v err %v, want not found", ok, err)
		}
		ids := func(os []store.Object) []string {
			var out []string
			for _, o := range os {
				out = append(out, o.ID)
			}
			return out
		}
		tests := []struct {
			status string
			before uint64
			limit  int
			want   []string
		}{
			{"", 0, 10, []string{"b7", "b6", "b4", "b3", "b2", "b1"}},
			{"", 0, 2, []string{"b7", "b6"}},
			{"", 60, 2, []string{"b4", "b3"}},
			{"", 10, 5, nil},
			{"cancelled", 0, 10, []string{"b6", "b3"}},
			{"filled", 70, 10, []string{"b4", "b2", "b1"}},
			{"expired", 0, 10, nil},
		}
		for _, tt := range tests {
			os, err := os.ListObjects(ctx, "bid", "alice", tt.status, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(os); !slices.Equal(got, tt.want) {
				t.Errorf("list status %q before %d limit %d: got %v, want %v", tt.status, tt.before, tt.limit, got, tt.want)
			}
		}
	})
}
