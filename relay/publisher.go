package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gpux/gpux/api"
)

// Publisher limits.
const (
	// DefaultQueue is PublisherConfig.Queue's default: messages waiting
	// for Redis. A full queue drops (and says so in the next batch)
	// rather than block the hub.
	DefaultQueue = 1 << 16
	// maxBatchMsgs and maxBatchBytes bound one published batch.
	maxBatchMsgs   = 1024
	maxBatchBytes  = 1 << 20
	publishTimeout = 2 * time.Second
)

// FeedChannel is the Redis channel a shard's feed is published on.
func FeedChannel(shard string) string { return "gpux:{" + shard + "}:feed" }

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Redis is the shard's Redis: a *redis.ClusterClient publishes with
	// SPUBLISH, anything else with PUBLISH.
	Redis redis.UniversalClient
	Shard string
	// Leader says whether this node leads the shard now; only the leader
	// publishes (a standby's hub sees the same events with other seqs).
	// Nil: always.
	Leader func() bool
	Queue  int // messages; default DefaultQueue
	Logger *slog.Logger
}

// Publisher publishes an engine node's feed (an api.FeedSink) in batches.
type Publisher struct {
	cfg     PublisherConfig
	node    string
	channel string
	q       chan item
	lost    atomic.Bool
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ api.FeedSink = (*Publisher)(nil)

// item is a queued message, or (synced set) a Sync's marker.
type item struct {
	m      api.FeedMessage
	synced chan struct{}
}

// NewPublisher starts a publisher; Close stops it.
func NewPublisher(cfg PublisherConfig) *Publisher {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("relay: crypto/rand failed: " + err.Error())
	}
	p := &Publisher{
		cfg: cfg, node: hex.EncodeToString(id[:]), channel: FeedChannel(cfg.Shard),
		q: make(chan item, cfg.Queue), closing: make(chan struct{}), done: make(chan struct{}),
	}
	go p.run()
	return p
}

// Publish queues m; it never blocks (a full queue marks the next batch lost).
func (p *Publisher) Publish(m api.FeedMessage) {
	select {
	case p.q <- item{m: m}:
	default:
		p.lost.Store(true)
	}
}

// Sync waits until every message handed over before it has been published
// (or dropped), or ctx ends.
func (p *Publisher) Sync(ctx context.Context) error {
	it := item{synced: make(chan struct{})}
	select {
	case p.q <- it:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-it.synced:
		return nil
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lost marks the next batch lost: the hub dropped messages.
func (p *Publisher) Lost() { p.lost.Store(true) }

// Close publishes what is queued (briefly) and stops.
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.closing) })
	<-p.done
}

func (p *Publisher) run() {
	defer close(p.done)
	var (
		n      uint64
		batch  []api.FeedMessage
		buf    []byte
		synced chan struct{} // a Sync waiting for this batch
	)
	for {
		if synced != nil {
			close(synced)
			synced = nil
		}
		batch = batch[:0]
		select {
		case it := <-p.q:
			if it.synced != nil {
				synced = it.synced
				continue
			}
			batch = append(batch, it.m)
		case <-p.closing:
			return
		}
		size := len(batch[0].Frame)
	fill:
		for len(batch) < maxBatchMsgs && size < maxBatchBytes {
			select {
			case it := <-p.q:
				if it.synced != nil {
					synced = it.synced
					break fill
				}
				batch = append(batch, it.m)
				size += len(it.m.Frame)
			default:
				break fill
			}
		}
		n++
		lost := p.lost.Swap(false)
		if p.cfg.Leader != nil && !p.cfg.Leader() {
			continue // counted: a relay sees the gap once this node leads
		}
		buf = appendBatch(buf[:0], p.node, n, lost, batch)
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		var err error
		if cc, ok := p.cfg.Redis.(*redis.ClusterClient); ok {
			err = cc.SPublish(ctx, p.channel, buf).Err()
		} else {
			err = p.cfg.Redis.Publish(ctx, p.channel, buf).Err()
		}
		cancel()
		if err != nil {
			// Relays see the missing batch number and resynchronise.
			p.cfg.Logger.Warn("feed publish failed", "shard", p.cfg.Shard, "batch", n, "messages", len(batch), "err", err)
		}
		for i := range batch {
			batch[i] = api.FeedMessage{} // let the frames go
		}
	}
}

// appendBatch encodes a batch (see the package doc) by hand: the frames
// are JSON already and go in as they are.
func appendBatch(b []byte, node string, n uint64, lost bool, msgs []api.FeedMessage) []byte {
	b = append(b, `{"v":1,"node":"`...)
	b = append(b, node...)
	b = append(b, `","n":`...)
	b = strconv.AppendUint(b, n, 10)
	if lost {
		b = append(b, `,"lost":true`...)
	}
	b = append(b, `,"msgs":[`...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"c":`...)
		b = appendJSONString(b, m.Channel)
		b = append(b, `,"s":`...)
		b = strconv.AppendUint(b, m.Seq, 10)
		b = append(b, `,"f":`...)
		b = append(b, m.Frame...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string: channel names are plain
// ASCII (market ids, account ids), which go in as they are; anything else
// goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
