package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestMergeNewest: pages of several shards merge newest first and each
// shard's items keep their order, also at equal times (a shard's cursor is
// the last item taken from it: taking a later one first would skip one).
func TestMergeNewest(t *testing.T) {
	type it struct {
		shard, id string
		at        int
	}
	for _, tc := range []struct {
		name string
		in   []it
		want string
	}{
		{"interleaved", []it{{"a", "a3", 3}, {"a", "a1", 1}, {"b", "b2", 2}, {"b", "b0", 0}}, "a3 b2 a1 b0"},
		{"equal times keep each shard's order", []it{{"a", "a1", 5}, {"a", "a2", 5}, {"b", "b1", 6}, {"b", "b0", 5}}, "b1 a1 a2 b0"},
		{"one shard", []it{{"a", "x", 1}, {"a", "y", 1}, {"a", "z", 0}}, "x y z"},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mergeNewest(tc.in, func(x it) (string, time.Time) { return x.shard, time.UnixMilli(int64(x.at)) })
			ids := make([]string, len(out))
			for i, x := range out {
				ids[i] = x.id
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
