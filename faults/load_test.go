package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/engine"
)

func join(s []string) string { return strings.Join(s, ",") }
func itoa(n int) string      { return strconv.Itoa(n) }

// httpClient is a client with a timeout well above the sequencer's append
// timeout, so a stalled Redis shows as a 503, not a client timeout.
func httpClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}}
}

// ticks formats an amount in ticks (1/10000 USD) as the API's decimal.
func ticks(t int64) string { return fmt.Sprintf("%d.%04d", t/engine.TicksPerUSD, t%engine.TicksPerUSD) }

func newKey() string {
	var b [12]byte
	rand.Read(b[:])
	return "f-" + hex.EncodeToString(b[:])
}

type opKind int

const (
	opListing opKind = iota
	opReservedBid
	opSpotBid
	opCancelBid
	opCancelListing
	opDeposit
	opWithdraw
	nOpKinds
)

var opNames = [nOpKinds]string{"listing", "reserved_bid", "spot_bid", "cancel_bid", "cancel_listing", "deposit", "withdraw"}

// op is one acknowledged command, enough to find it again in an engine.
type op struct {
	kind   opKind
	key    string    // Idempotency-Key (creates and money)
	actor  engine.ID // the engine actor the key is scoped to (zero: admin)
	target string    // object created or cancelled; account for money
	amount int64     // ticks, for money
	buyer  string    // the buyer of a bid
}

// party is an account the load acts as; it outlives gpuxd restarts.
type party struct {
	id  string
	eid engine.ID
	key string
}

// ledger is what the load was told: acknowledged commands, and the money
// whose outcome is unknown (the request failed without an answer, or with
// a 503 whose outcome the server does not know).
type ledger struct {
	owner  party
	buyers []party
	// markets are the markets the load trades in, all of the shard's
	// catalogue (the audit builds a fresh engine from it).
	markets   []string
	catalogue []engine.Market

	mu                 sync.Mutex
	acked              []op
	ackedDeposits      int64
	ackedWithdrawals   int64
	unknownDeposits    int64
	unknownWithdrawals int64
	openBids           map[string][]string // buyer → acknowledged bids not yet cancelled
	openListings       []string

	counts      [nOpKinds]atomic.Int64
	rejected    atomic.Int64 // 4xx answers: the engine (or API) refused
	unavailable atomic.Int64 // 503 answers
	lost        atomic.Int64 // no answer (connection refused/reset, timeout)
	badRetry    atomic.Int64 // 503 without a usable Retry-After
}

// setupLedger creates one owner and three buyers through d and funds them.
func setupLedger(tb testing.TB, d *daemon) *ledger {
	tb.Helper()
	ctx := context.Background()
	admin := d.admin()
	l := &ledger{openBids: map[string][]string{}, markets: faultMarkets, catalogue: engine.Catalogue(faultGPUs, faultRegions)}
	mk := func(name string, roles ...string) party {
		a, err := admin.CreateAccount(ctx, client.CreateAccountRequest{Name: name, Roles: roles, IdempotencyKey: newKey()})
		if err != nil {
			tb.Fatalf("create account %s: %v", name, err)
		}
		eid, err := engine.ParseID(a.ID)
		if err != nil {
			tb.Fatal(err)
		}
		return party{id: a.ID, eid: eid, key: a.APIKey}
	}
	l.owner = mk("owner", client.RoleOwner)
	for i := range 3 {
		l.buyers = append(l.buyers, mk(fmt.Sprint("buyer", i), client.RoleBuyer))
	}
	for _, b := range l.buyers {
		amt := int64(5_000_000) * engine.TicksPerUSD
		key := newKey()
		if _, err := admin.Deposit(ctx, b.id, ticks(amt), client.WithIdempotencyKey(key)); err != nil {
			tb.Fatalf("fund %s: %v", b.id, err)
		}
		l.ack(op{kind: opDeposit, key: key, target: b.id, amount: amt})
	}
	return l
}

func (l *ledger) ack(o op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, o)
	l.counts[o.kind].Add(1)
	switch o.kind {
	case opDeposit:
		l.ackedDeposits += o.amount
	case opWithdraw:
		l.ackedWithdrawals += o.amount
	case opReservedBid, opSpotBid:
		l.openBids[o.buyer] = append(l.openBids[o.buyer], o.target)
	case opListing:
		l.openListings = append(l.openListings, o.target)
	}
}

// pick removes and returns a random element of *s.
func pick(r *mrand.Rand, s *[]string) (string, bool) {
	if len(*s) == 0 {
		return "", false
	}
	i := r.IntN(len(*s))
	v := (*s)[i]
	(*s)[i] = (*s)[len(*s)-1]
	*s = (*s)[:len(*s)-1]
	return v, true
}

// outcome classifies a call's error. It returns true when the command is
// acknowledged. A 503 must carry Retry-After.
func (l *ledger) outcome(err error) (acked, unknown bool) {
	if err == nil {
		return true, false
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Status == http.StatusServiceUnavailable:
			l.unavailable.Add(1)
			if ce.RetryAfter <= 0 {
				l.badRetry.Add(1)
			}
			// A client backs off; far shorter than Retry-After, so the
			// test sees writes come back quickly.
			time.Sleep(20 * time.Millisecond)
			return false, true
		case ce.Status >= 500:
			l.lost.Add(1)
			return false, true
		default:
			l.rejected.Add(1)
			return false, false
		}
	}
	l.lost.Add(1)
	time.Sleep(5 * time.Millisecond) // the server is gone: do not spin
	return false, true
}

// load drives mixed traffic at d from workers goroutines until ctx ends.
// Every create and money movement carries an Idempotency-Key.
type load struct {
	l       *ledger
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	started atomic.Int64 // requests sent
}

func startLoad(l *ledger, d *daemon, workers int, seed uint64) *load {
	return startLoadAt(l, d.url, workers, seed, httpClient())
}

// startLoadAt is startLoad against whatever base URL target returns when
// each request starts (a shard's current leader).
func startLoadAt(l *ledger, target func() string, workers int, seed uint64, hc *http.Client) *load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{l: l, cancel: cancel}
	for w := range workers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			r := mrand.New(mrand.NewPCG(seed, uint64(w)))
			buyer := l.buyers[w%len(l.buyers)]
			var url string
			var admin, owner, bc *client.Client
			for ctx.Err() == nil {
				if u := target(); u != url {
					url = u
					base := client.New(url, client.WithHTTPClient(hc))
					admin, owner, bc = base.WithKey(adminKey), base.WithKey(l.owner.key), base.WithKey(buyer.key)
				}
				ld.started.Add(1)
				ld.one(ctx, r, admin, owner, bc, buyer)
			}
		}()
	}
	return ld
}

// stop ends the load and waits for every worker.
func (ld *load) stop() {
	ld.cancel()
	ld.wg.Wait()
}

func (ld *load) one(ctx context.Context, r *mrand.Rand, admin, owner, bc *client.Client, buyer party) {
	l := ld.l
	hour := time.Now().UTC().Truncate(time.Hour)
	market := l.markets[r.IntN(len(l.markets))]
	key := newKey()
	// A command cut off by the load's own stop is not a fault; its outcome
	// is unknown all the same, which is how it is counted.
	switch n := r.IntN(100); {
	case n < 20:
		req := client.ListingRequest{Market: market, Quantity: 1 + r.IntN(8), Start: hour, End: hour.Add(time.Duration(2+r.IntN(30)) * time.Hour),
			ReservePrice: client.FixedPrice(ticks(10000 + r.Int64N(30000))), SpotPriceFloor: client.FixedPrice(ticks(5000 + r.Int64N(20000))), IdempotencyKey: key}
		res, err := owner.PlaceListing(ctx, req)
		if ok, _ := l.outcome(err); ok {
			l.ack(op{kind: opListing, key: key, actor: l.owner.eid, target: res.ID})
		}
	case n < 45:
		st := hour.Add(time.Duration(1+r.IntN(6)) * time.Hour)
		req := client.BidRequest{Type: client.BidReserved, Market: market, Quantity: 1 + r.IntN(4), Start: st, End: st.Add(time.Duration(1+r.IntN(6)) * time.Hour),
			LimitPrice: client.FixedPrice(ticks(10000 + r.Int64N(30000))), IdempotencyKey: key}
		res, err := bc.PlaceBid(ctx, req)
		if ok, _ := l.outcome(err); ok {
			l.ack(op{kind: opReservedBid, key: key, actor: buyer.eid, target: res.ID, buyer: buyer.id})
		}
	case n < 60:
		req := client.BidRequest{Type: client.BidSpot, Market: market, Quantity: 1 + r.IntN(4), LimitPrice: client.FixedPrice(ticks(5000 + r.Int64N(30000))), IdempotencyKey: key}
		res, err := bc.PlaceBid(ctx, req)
		if ok, _ := l.outcome(err); ok {
			l.ack(op{kind: opSpotBid, key: key, actor: buyer.eid, target: res.ID, buyer: buyer.id})
		}
	case n < 75:
		l.mu.Lock()
		bids := l.openBids[buyer.id]
		id, ok := pick(r, &bids)
		l.openBids[buyer.id] = bids
		l.mu.Unlock()
		if !ok {
			return
		}
		_, err := bc.CancelBid(ctx, id)
		if ok, _ := l.outcome(err); ok {
			l.ack(op{kind: opCancelBid, target: id})
		}
	case n < 80:
		l.mu.Lock()
		id, ok := pick(r, &l.openListings)
		l.mu.Unlock()
		if !ok {
			return
		}
		_, err := owner.CancelListing(ctx, id)
		if ok, _ := l.outcome(err); ok {
			l.ack(op{kind: opCancelListing, target: id})
		}
	case n < 90:
		amt := 1 + r.Int64N(1_000_000)
		_, err := admin.Deposit(ctx, buyer.id, ticks(amt), client.WithIdempotencyKey(key))
		ok, unknown := l.outcome(err)
		l.mu.Lock()
		if unknown {
			l.unknownDeposits += amt
		}
		l.mu.Unlock()
		if ok {
			l.ack(op{kind: opDeposit, key: key, target: buyer.id, amount: amt})
		}
	default:
		amt := 1 + r.Int64N(200_000)
		_, err := admin.Withdraw(ctx, buyer.id, ticks(amt), client.WithIdempotencyKey(key))
		ok, unknown := l.outcome(err)
		l.mu.Lock()
		if unknown {
			l.unknownWithdrawals += amt
		}
		l.mu.Unlock()
		if ok {
			l.ack(op{kind: opWithdraw, key: key, target: buyer.id, amount: amt})
		}
	}
}

// summary is a one-line account of what the load was told.
func (l *ledger) summary() string {
	var b strings.Builder
	for k := range nOpKinds {
		fmt.Fprintf(&b, "%s=%d ", opNames[k], l.counts[k].Load())
	}
	fmt.Fprintf(&b, "rejected=%d 503=%d no-answer=%d", l.rejected.Load(), l.unavailable.Load(), l.lost.Load())
	return b.String()
}
