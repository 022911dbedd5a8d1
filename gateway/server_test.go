package gateway

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestDial: a redis:// URL is one Redis, a redis+cluster:// URL a cluster,
// anything else an error.
func TestDial(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster bool
		fails   bool
	}{
		{"redis://127.0.0.1:6379/0", false, false},
		{"redis+cluster://127.0.0.1:7000,127.0.0.1:7001", true, false},
		{"redis+cluster://", false, true},
		{"http://x", false, true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := Dial(tc.url)
			if tc.fails {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, isCluster := c.(*redis.ClusterClient); isCluster != tc.cluster {
				t.Errorf("cluster client: got %v, want %v", isCluster, tc.cluster)
			}
		})
	}
}
