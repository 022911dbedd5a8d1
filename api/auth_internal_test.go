package api

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestKeyCacheBounded: the cache answers what was put and never holds
// more than keyCacheMax keys.
func TestKeyCacheBounded(t *testing.T) {
	var k keyCache
	for i := range 3 * keyCacheMax {
		key := fmt.Sprint("gpux_", i)
		k.put(key, sha256.Sum256([]byte(key)))
		if h, ok := k.get(key); !ok || h != sha256.Sum256([]byte(key)) {
			t.Fatalf("key %d: got %x %v right after put", i, h, ok)
		}
		if len(k.m) > keyCacheMax {
			t.Fatalf("cache holds %d keys, want at most %d", len(k.m), keyCacheMax)
		}
	}
	if _, ok := k.get("gpux_unknown"); ok {
		t.Error("a key never put was found")
	}
}
