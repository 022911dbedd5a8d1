// Package relay carries the websocket feed past one machine: engine nodes
// publish what their hub sends to Redis (Publisher, an api.FeedSink), and
// API nodes relay it to their own websocket clients (Relay, over an
// api.RelayFeed, so the protocol has one implementation: package api's).
//
// It holds no exchange state and never touches an engine: channel state on
// an API node is what the engine nodes' hubs sent, from a snapshot fetched
// from the shard's leader (GET /v1/internal/feed/snapshot, admin key) and the
// updates published since.
//
// # Message format
//
// A shard's leader publishes to the Redis channel gpux:{<shard>}:feed
// (PUBLISH; SPUBLISH on a Redis Cluster, so the message stays on the
// shard's slot). Each Redis message is one batch, a JSON object:
//
//	{"v": 1, "node": "<publisher id>", "n": <batch number>, "lost": true?,
//	 "msgs": [{"c": "<channel>", "s": <seq>, "f": <message>}, ...]}
//
// node is random per Publisher (a process taking over the shard has a new
// one); n counts the publisher's batches from 1, including those it could
// not publish (a Redis error, or not the leader at the time); lost says the
// publisher or the hub dropped messages before this batch (a full queue).
// Each entry is a message the hub sent: c the hub's channel name (prices,
// book:<market>, trades:<market>, user:<account id>), s its seq, f the
// message exactly as the engine node's own subscribers got it
// ({"channel","type":"update","seq","data","ts"}).
//
// A relay that sees another node, an n that is not the last one plus one,
// or lost, has missed messages of that shard: it fetches every channel of
// the shard again and sends their subscribers fresh snapshots. A relay
// that loses its Redis connection does the same after reconnecting.
//
// # Seqs across nodes and takeovers
//
// A channel's seq on an API node is the engine node's (prices, and user
// with several shards: the sum of the shards' seqs of that channel, see
// api.RelayFeed). An engine hub with a sink
// starts every channel at its start time in ms × 256, and moves every
// channel there again when its node becomes the shard's leader, so after
// a takeover the new leader's seqs are past the old one's: clients see a
// gap (the SDK resubscribes), never a seq going back. (This holds while a
// channel averages under 256 messages a millisecond.)
package relay
