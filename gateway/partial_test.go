package gateway

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/gpux/gpux/api"
)

// TestMarketsWithShardDown: while a shard has no node that answers, GET
// /v1/markets and /v1/prices answer the other shards' markets and name
// the missing shard in X-Gpux-Missing-Shards; with no shard answering
// they are 503; with every shard back the header is gone.
func TestMarketsWithShardDown(t *testing.T) {
	cl, regions := newCluster(t, 1)
	r1 := regions[0]
	g := cl.gateway(nil)
	type item struct {
		ID     string `json:"id"`
		Market string `json:"market"`
	}
	ids := func(a answer) []string {
		t.Helper()
		var items []item
		a.decode(t, &items)
		var out []string
		for _, it := range items {
			out = append(out, it.ID+it.Market)
		}
		return out
	}
	all := ids(do(t, g.url, "GET", "/v1/markets", "", nil).want(t, 200, ""))
	if len(all) != 4 {
		t.Fatalf("markets of both shards: got %v, want 4", all)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	// r1's leader stops answering and it has no standby.
	ctx := context.Background()
	if err := cl.rdb.HSet(ctx, leaseKey(r1), "addr", dead).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.rdb.Del(ctx, nodesKey(r1)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/markets", "/v1/prices"} {
		a := do(t, g.url, "GET", path, "", nil).want(t, 200, "")
		got := ids(a)
		if len(got) != 2 || strings.Contains(strings.Join(got, ","), r1) {
			t.Errorf("%s without %s: got %v, want the main shard's two markets", path, r1, got)
		}
		if h := a.header.Get(MissingShardsHeader); h != r1 {
			t.Errorf("%s: %s %q, want %q", path, MissingShardsHeader, h, r1)
		}
	}
	// No shard answers: 503, as before.
	if err := cl.rdb.HSet(ctx, leaseKey(cl.main), "addr", dead).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.rdb.Del(ctx, nodesKey(cl.main)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/markets", "/v1/prices"} {
		do(t, g.url, "GET", path, "", nil).want(t, 503, api.CodeNoLeader)
	}
	// Both back.
	for shard, n := range cl.nodes {
		cl.publish(shard, n.addr, true)
	}
	a := do(t, g.url, "GET", "/v1/markets", "", nil).want(t, 200, "")
	if got := ids(a); len(got) != 4 || a.header.Get(MissingShardsHeader) != "" {
		t.Errorf("both back: got %v, header %q", got, a.header.Get(MissingShardsHeader))
	}
}
