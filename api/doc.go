// Package api serves the exchange over HTTP and websockets (Fiber): it
// authenticates callers, validates and decodes requests completely before
// anything reaches the engine, submits commands through the sequencer,
// renders the engine's state right after each command, and fans engine
// events out to websocket subscribers.
//
// It holds no exchange logic and no state of its own beyond caches that can
// be rebuilt (rate-limit buckets, feed subscriptions, recent-trade rings):
// the live market comes from the engine through the sequencer (Submit,
// Read), the market's past (closed orders, statements, the price board,
// candles, the trade log and spot history, the reference-rate table in
// force) from the read side, package history, which the sequencer feeds
// through OnEvents (server.go says in which order). The websocket hub
// (ws.go) only delivers: it renders and sends, and writes nothing.
// It must not touch the engine except on the goroutine and under the lock
// the sequencer provides, never block the sequencer goroutine (the events
// hook only copies and enqueues), and never hand a *fiber.Ctx or a string
// or slice borrowed from it to another goroutine.
//
// Every client-controlled input is bounded before it costs anything: the
// body after decoding (body.go), headers, JSON (no duplicate keys), names,
// and on the feed each connection's message size, channels, ops and
// snapshots and each address's connections (wsconn.go); docs/SECURITY.md
// lists every limit and its answer. An API key is shown once, in the
// answer that created it, and stored nowhere in plain text.
//
// With several shards (shards.go) a node runs one of them (Config.Role,
// Config.Shard): a deposit or withdrawal may name only its shard, a write
// refused by a standby answers 503 no_leader, and API nodes (package
// gateway) create accounts on it through an admin-only internal route with
// the id and key hash their registry holds; they forward requests with
// GatewayHeader so this node does not rate-limit them twice.
//
// Every failure is an RFC 9457 application/problem+json body with a stable
// code; the code → status table, and the websocket error codes, are in
// problem.go.
package api
