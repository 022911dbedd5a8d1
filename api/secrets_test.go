package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/sequencer"
)

// syncBuffer is a log sink several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type createdAccount struct {
	ID          string  `json:"id"`
	APIKey      *string `json:"api_key"`
	APIKeyShown *bool   `json:"api_key_shown"`
}

// TestSecretsAtRest: a new account's API key is shown once and stored
// nowhere in plain text: not in the idempotency answer kept for replays,
// the journal, the snapshot or the read models (every key and value of
// the shard in Redis is scanned), nor in logs or metrics. Before, the
// idempotency answer held the key for 24 h and a replay showed it again.
func TestSecretsAtRest(t *testing.T) {
	var logs syncBuffer
	e := newEnvSeq(t, func(c *api.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, func(c *sequencer.Config) { c.SnapshotEvery = 1 })

	create := func(idem string) (int, createdAccount) {
		t.Helper()
		var hdr []string
		if idem != "" {
			hdr = []string{"Idempotency-Key", idem}
		}
		status, _, body := e.raw(http.MethodPost, "/v1/accounts", adminKey, []byte(`{"name":"secret","roles":["buyer"]}`), hdr...)
		var a createdAccount
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return status, a
	}
	status, first := create("acct-secret")
	if status != http.StatusCreated || first.APIKey == nil || !strings.HasPrefix(*first.APIKey, api.KeyPrefix) || first.APIKeyShown == nil || !*first.APIKeyShown {
		t.Fatalf("first answer: got %d %+v, want 201 with the key shown", status, first)
	}
	key := *first.APIKey
	status, replay := create("acct-secret")
	if status != http.StatusCreated || replay.ID != first.ID || replay.APIKey != nil || replay.APIKeyShown == nil || *replay.APIKeyShown {
		t.Errorf("replay: got %d %+v, want 201, the same id, api_key null, api_key_shown false", status, replay)
	}
	// The key works, over HTTP and on the feed; a wrong one is refused.
	if status, _, body := e.raw(http.MethodGet, "/v1/account", key, nil); status != http.StatusOK {
		t.Fatalf("GET /v1/account with the key: %d %s", status, body)
	}
	e.raw(http.MethodGet, "/v1/account", key+"x", nil)
	c, _ := dialFeed(t, e, nil, nil)
	for _, k := range []string{key + "x", key} {
		if err := c.WriteJSON(map[string]any{"op": "auth", "key": k}); err != nil {
			t.Fatal(err)
		}
		readUntil(t, c, func(m wireMsg) bool { return m.Type == "auth" })
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))

	// Wait for the snapshot, then look everywhere.
	for deadline := time.Now().Add(feedWait); e.seq.Status().LastSnapshotSeq < e.seq.Status().LastSeq; {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot at the last seq: %+v", e.seq.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	secret := strings.TrimPrefix(key, api.KeyPrefix)
	dump := dumpShard(t, e.journal.Client(), e.shard)
	if len(dump) == 0 {
		t.Fatal("nothing in Redis for the shard")
	}
	if !strings.Contains(dump, first.ID) {
		t.Errorf("the dump does not hold the account id %s: the scan misses data", first.ID)
	}
	for where, text := range map[string]string{"redis": dump, "logs": logs.String(), "metrics": string(mustMetrics(t, e))} {
		if strings.Contains(text, secret) {
			t.Errorf("the API key is in %s in plain text", where)
		}
	}
	// The server restarts from what Redis holds and still knows the key.
	e.restart()
	if status, _, body := e.raw(http.MethodGet, "/v1/account", key, nil); status != http.StatusOK {
		t.Errorf("after restart: %d %s", status, body)
	}
}

func mustMetrics(tb testing.TB, e *env) []byte {
	tb.Helper()
	m, err := e.anon.Metrics(bg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// dumpShard renders every key of the shard and its value as text.
func dumpShard(tb testing.TB, rdb redis.UniversalClient, shard string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	iter := rdb.Scan(ctx, 0, "gpux:{"+shard+"}:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			tb.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		default:
			tb.Fatalf("key %s of type %s: the dump cannot read it", k, typ)
		}
		if err != nil {
			tb.Fatalf("read %s: %v", k, err)
		}
		fmt.Fprintf(&out, "%s %s %v\n", k, typ, v)
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return out.String()
}
