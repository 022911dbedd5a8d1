package relay_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store/redistest"
)

// TestRelayUserAcrossShards: an account with wallets on two shards gets
// the events of both on its user channel through either relay, each
// naming its shard, at one seq, the sum of the shards' own: a late
// subscriber on either relay is at that sum with the wallets summed.
func TestRelayUserAcrossShards(t *testing.T) {
	c := newCluster(t)
	mainShard, region := redistest.Shard(t), redistest.Shard(t)
	mainEng := c.startEngine(mainShard, engine.Catalogue([]string{"h100-sxm"}, []string{"us-east"}))
	regionEng := c.startEngine(region, engine.Catalogue([]string{"h100-sxm"}, []string{region}))
	relayA, relayB := c.relayNode(mainShard, nil), c.relayNode(mainShard, nil)
	a := c.account(mainEng, "a", "100", client.RoleBuyer)

	type userData struct {
		Shard   string `json:"shard"`
		Event   string `json:"event"`
		Balance string `json:"balance"`
		Wallets []struct {
			Shard   string `json:"shard"`
			Balance string `json:"balance"`
		} `json:"wallets"`
	}
	decode := func(m client.Message) userData {
		t.Helper()
		var d userData
		if err := m.Decode(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ra := subscribe(t, "a on relay A", client.New(relayA, client.WithAPIKey(a.key)), "user")
	rb := subscribe(t, "a on relay B", client.New(relayB, client.WithAPIKey(a.key)), "user")
	for _, r := range []*reader{ra, rb} {
		if d := decode(r.snapshots("user")["user"]); d.Balance != "100.00" || len(d.Wallets) != 1 || d.Wallets[0].Shard != mainShard {
			t.Fatalf("%s: snapshot %+v, want 100.00 in one wallet of %s", r.name, d, mainShard)
		}
	}

	// The account gets a wallet on the region shard (as an API node
	// provisions it) and money there.
	h := sha256.Sum256([]byte(a.key))
	body, _ := json.Marshal(map[string]any{"name": "a", "roles": []string{"buyer"}, "key_hash": hex.EncodeToString(h[:])})
	req, _ := http.NewRequest(http.MethodPut, regionEng.url+"/v1/internal/accounts/"+a.id, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("provision on %s: %v %v", region, err, resp)
	}
	resp.Body.Close()
	if _, err := regionEng.admin.Deposit(bg, a.id, "50"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*reader{ra, rb} {
		r.next(func(m client.Message) bool {
			d := decode(m)
			return m.Channel == "user" && (m.Type == client.MsgSnapshot && d.Balance == "150.00" ||
				m.Type == client.MsgUpdate && d.Shard == region && d.Event == "balance_changed" && d.Balance == "50.00")
		})
	}
	if _, err := mainEng.admin.Deposit(bg, a.id, "5"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*reader{ra, rb} {
		r.next(func(m client.Message) bool {
			d := decode(m)
			return m.Type == client.MsgUpdate && d.Shard == mainShard && d.Event == "balance_changed" && d.Balance == "105.00"
		})
		r.drain()
	}
	sameAtSameSeq(t, "user", ra, rb)

	var sum uint64
	for _, e := range []*engineNode{mainEng, regionEng} {
		sum += subscribe(t, "direct "+e.shard, client.New(e.url, client.WithAPIKey(a.key)), "user").snapshots("user")["user"].Seq
	}
	// A late subscriber gets the stored snapshots and the updates since,
	// up to the sum, ending at each wallet's balance.
	for _, base := range []string{relayA, relayB} {
		r := subscribe(t, "late on "+base, client.New(base, client.WithAPIKey(a.key)), "user")
		m := r.snapshots("user")["user"]
		d := decode(m)
		if m.Seq > sum || len(d.Wallets) != 2 {
			t.Errorf("%s: snapshot at seq %d %+v, want at most seq %d (the shards' sum) over 2 wallets", r.name, m.Seq, d, sum)
		}
		wallets := map[string]string{}
		for _, w := range d.Wallets {
			wallets[w.Shard] = w.Balance
		}
		for m.Seq < sum {
			m = r.next(is(client.MsgUpdate, "user"))
			if d := decode(m); d.Event == "balance_changed" {
				wallets[d.Shard] = d.Balance
			}
		}
		if m.Seq != sum || wallets[mainShard] != "105.00" || wallets[region] != "50.00" {
			t.Errorf("%s: at seq %d with wallets %v, want seq %d, %s 105.00, %s 50.00", r.name, m.Seq, wallets, sum, mainShard, region)
		}
	}
}
