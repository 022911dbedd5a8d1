// Package gateway is the API node (gpuxd --role api): a stateless HTTP
// front that serves every endpoint of the contract for every market by
// routing each request to the engine nodes of the shard that owns it.
//
// Transport: it forwards the client's request, as it came (path, query,
// body, Authorization, Idempotency-Key), to an engine node's own HTTP API
// and relays the answer unchanged. Engine nodes already serve and
// validate the full API, so one set of handlers, one set of error codes
// and one idempotency scheme stay the truth, and an answer through an API
// node is byte for byte the engine node's. Writes go to the leader named
// in the shard's lease (gpux:{S}:lease addr); reads go to the leader or,
// when it does not answer, to each live standby (gpux:{S}:nodes). A
// command stream in Redis would have added a second path into the
// sequencer, with its own ordering, back-pressure and reply channel, for
// no gain in what is journaled: the leader's sequencer is the one place
// commands are ordered either way.
//
// What it decides itself: who the caller is (the account registry in
// Redis, gpux:{registry}:keys and :account:<id>, holding key hashes only),
// which shard owns a market (`<gpu>.<region>` → shard <region> when it
// exists, else the default shard "main"), the merges of what spans
// shards (market lists, prices, an account's wallets summed, bids and
// listings paged across shards with a cursor per shard), and transfers
// between an account's wallets (transfer.go), which a sweeper on every
// API node completes when the node that began one stopped.
//
// It holds no state of its own beyond a cached reading of the topology
// (250 ms) and rate-limit buckets: any number of API nodes can serve
// behind a load balancer. While a shard has no leader its writes answer
// 503 no_leader with Retry-After, and its reads keep answering from a
// standby. It never talks to an engine except through an engine node's
// HTTP API, and never stores or logs an API key.
package gateway
