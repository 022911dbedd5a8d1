package gateway

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkForwarded is what an API node adds to a request: the same GET
// sent to the engine node directly and through an API node, in one run
// (one shard; quote the ratio, the machine is shared).
func BenchmarkForwarded(b *testing.B) {
	cl, _ := newCluster(b, 0)
	g := cl.gateway(func(c *Config) { c.TopologyRefresh = 0 }) // the default cache, as deployed
	_, key := g.account("bench", "buyer")
	direct := "http://" + cl.nodes[cl.main].addr
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, req := range []struct{ name, path, key string }{
		{"book", "/v1/markets/h100-sxm.us-east/book", ""},
		{"account", "/v1/account", key},
	} {
		for _, via := range []struct{ name, base string }{{"direct", direct}, {"api-node", g.url}} {
			b.Run(req.name+"/"+via.name, func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := http.NewRequest("GET", via.base+req.path, nil)
						if err != nil {
							b.Fatal(err)
						}
						if req.key != "" {
							r.Header.Set("Authorization", "Bearer "+req.key)
						}
						resp, err := hc.Do(r)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Fatalf("status %d", resp.StatusCode)
						}
					}
				})
			})
		}
	}
}
