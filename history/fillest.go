package history

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/store"
	"github.com/gpux/gpux/survival"
)

// FillEstimates estimates how soon a resting bid fills, per market, bid
// type and distance bucket (survival.BucketOf), from the market's own
// history of resting bids. See docs/MARKET.md "Fill estimate".
//
// It has three parts:
//   - Observe, on the sequencer's hook, queues the batch's placed bids and
//     the first fill, allocation or close of each bid it touched; a worker
//     goroutine (Run) records each placed bid that rests (placed time,
//     type, limit, and the price it faced: the spot clearing price, or the
//     best reserved ask, engine.BestAsk, read once per market per batch
//     through the sequencer's read lock), and turns it into a sample when
//     it first fills or is allocated (filled) or closes without either
//     (cancelled or expired: censored);
//   - Refresh, on a background goroutine (Run), fits a Kaplan–Meier curve
//     per (market, type, bucket) from the newest samples and publishes the
//     table atomically;
//   - Estimate, on the request path, reads that table without locks.
//
// Placements and samples live in a store.SeriesStore (Redis, or memory).
type FillEstimates struct {
	ss         store.SeriesStore
	read       func(fn func(e *engine.Engine))
	log        *slog.Logger
	maxSamples int

	queue chan fillDigest
	table atomic.Pointer[fillTable]
}

// DefaultFillSamples is how many of the newest samples per market and bid
// type an estimate is fitted on.
const DefaultFillSamples = 5000

// fillPlacements is the fact set of bids resting and not yet sampled.
const fillPlacements = "fillplace"

// placement is a resting bid as recorded when placed. Type 0 means the
// bid had closed before the worker read it: Limit and Type then come from
// its final state, and the price it faced is FacedSpot or Faced by type.
type placement struct {
	Market    string         `json:"m"`
	Type      engine.BidType `json:"t,omitempty"`
	Limit     engine.Price   `json:"l,omitempty"`
	Faced     engine.Price   `json:"p"` // the best ask (reserved) or spot price; 0: none
	FacedSpot engine.Price   `json:"ps,omitempty"`
	Placed    engine.Time    `json:"at"`
	// FirstFill is set when a fill or allocation came before the type
	// was known (the sample then waits for the close).
	FirstFill engine.Time `json:"ff,omitempty"`
}

// fillSample is one resting bid's outcome.
type fillSample struct {
	Bucket survival.Bucket `json:"b"`
	Waited int64           `json:"w"` // milliseconds
	Filled bool            `json:"f"`
}

type fillKey struct {
	market string
	typ    engine.BidType
	bucket survival.Bucket
}

type fillStat struct {
	est     *survival.Estimate
	samples int
}

type fillTable struct {
	stats map[fillKey]fillStat
}

// NewFillEstimates returns estimates on ss (nil: in memory); read reads
// the engine (api: Sequencer.Read) and may hand fn a nil engine before
// recovery. maxSamples <= 0 means DefaultFillSamples.
func NewFillEstimates(ss store.SeriesStore, read func(fn func(e *engine.Engine)), maxSamples int, log *slog.Logger) *FillEstimates {
	if ss == nil {
		ss = store.NewMemoryReadModels(store.ReadModelOptions{})
	}
	if log == nil {
		log = slog.Default()
	}
	if maxSamples <= 0 {
		maxSamples = DefaultFillSamples
	}
	f := &FillEstimates{ss: ss, read: read, log: log, maxSamples: maxSamples, queue: make(chan fillDigest, fillQueue)}
	f.table.Store(&fillTable{stats: map[fillKey]fillStat{}})
	return f
}

func fillSeries(market string, typ engine.BidType) string {
	return "fill:" + market + ":" + typ.String()
}

type bidEnd struct {
	at     engine.Time
	filled bool
	final  *engine.BidView // set by a close
}

// fillDigest is what Observe keeps of a batch: the bids it placed and the
// first fill, allocation or close of each bid it touched.
type fillDigest struct {
	placed []placedBid
	ends   map[engine.ID]bidEnd
}

type placedBid struct {
	id     engine.ID
	market string
	at     engine.Time
}

// fillQueue bounds the digests waiting for the worker; beyond it a batch's
// digest is dropped (counted in the log), never waited for.
const fillQueue = 4096

// Observe takes what the estimates need from a batch's events and queues
// it for the worker (Run, or Drain); it never blocks and never reads the
// engine (the sequencer may hold its lock while it calls observers, as in
// a repair replay).
func (f *FillEstimates) Observe(evs []engine.Event) {
	var d fillDigest
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case engine.EvBidPlaced:
			d.placed = append(d.placed, placedBid{ev.Bid, ev.Market, ev.Time})
		case engine.EvFilled, engine.EvSpotAllocated, engine.EvBidClosed:
			if d.ends == nil {
				d.ends = map[engine.ID]bidEnd{}
			}
			end, ok := d.ends[ev.Bid]
			if !ok {
				end = bidEnd{at: ev.Time, filled: ev.Kind != engine.EvBidClosed}
			}
			if ev.Kind == engine.EvBidClosed {
				end.final = ev.FinalBid
			}
			d.ends[ev.Bid] = end
		}
	}
	if len(d.placed) == 0 && len(d.ends) == 0 {
		return
	}
	select {
	case f.queue <- d:
	default:
		f.log.Warn("fill estimate: worker behind; a batch's bids are not sampled", "placed", len(d.placed), "ended", len(d.ends))
	}
}

// Drain processes every queued digest now, in order (tests; Run does it
// as digests arrive).
func (f *FillEstimates) Drain(ctx context.Context) {
	for {
		select {
		case d := <-f.queue:
			f.process(ctx, d)
		default:
			return
		}
	}
}

// process records the digest's resting bids and the outcomes of earlier
// ones. It runs on the worker, in batch order, so a bid's placement is
// recorded before its end is looked up. The engine is read for the
// placed bids (limit, whether they rest) and the price they face, a few
// milliseconds after their batch: a bid that filled or closed by then is
// not counted as resting. A sample lost to a failing store only thins the
// statistics: it is logged, not retried.
func (f *FillEstimates) process(ctx context.Context, d fillDigest) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	newPlaced := map[string][]byte{}
	if len(d.placed) > 0 && f.read != nil {
		f.read(func(e *engine.Engine) {
			if e == nil {
				return
			}
			faced := map[string]engine.Price{}
			price := func(market string, typ engine.BidType) engine.Price {
				fk := market + "/" + typ.String()
				p, seen := faced[fk]
				if !seen {
					p = facedPrice(e, market, typ)
					faced[fk] = p
				}
				return p
			}
			for _, pb := range d.placed {
				if _, ended := d.ends[pb.id]; ended {
					continue // filled, allocated or closed in the batch that placed it
				}
				// It rested after its batch. The worker may read it later
				// than that: filled or closed since is fine.
				pl := placement{Market: pb.market, Placed: pb.at}
				if b, ok := e.Bid(pb.id); ok {
					pl.Type, pl.Limit, pl.Faced = b.Type, b.Limit, price(b.Market, b.Type)
				} else {
					pl.Faced, pl.FacedSpot = price(pb.market, engine.Reserved), price(pb.market, engine.Spot)
				}
				data, _ := json.Marshal(pl)
				newPlaced[pb.id.String()] = data
			}
		})
	}
	if len(newPlaced) > 0 {
		if err := f.ss.PutFacts(ctx, fillPlacements, newPlaced); err != nil {
			f.log.Warn("fill estimate: placements not stored", "bids", len(newPlaced), "err", err)
		}
	}
	if len(d.ends) == 0 {
		return
	}
	ids := make([]string, 0, len(d.ends))
	for id := range d.ends {
		ids = append(ids, id.String())
	}
	slices.Sort(ids)
	vals, err := f.ss.GetFacts(ctx, fillPlacements, ids)
	if err != nil {
		f.log.Warn("fill estimate: placements not read", "bids", len(ids), "err", err)
		return
	}
	samples := map[string][]store.SeriesEntry{}
	var done []string
	for i, v := range vals {
		if v == nil {
			continue
		}
		var p placement
		if err := json.Unmarshal(v, &p); err != nil {
			f.log.Warn("fill estimate: bad placement", "bid", ids[i], "err", err)
			continue
		}
		id, _ := engine.ParseID(ids[i])
		end := d.ends[id]
		if p.Type == 0 {
			if end.final == nil {
				// Filled before its type was read: wait for the close.
				if p.FirstFill == 0 && end.filled {
					p.FirstFill = end.at
					data, _ := json.Marshal(p)
					if err := f.ss.PutFacts(ctx, fillPlacements, map[string][]byte{ids[i]: data}); err != nil {
						f.log.Warn("fill estimate: placement not updated", "bid", ids[i], "err", err)
					}
				}
				continue
			}
			p.Type, p.Limit = end.final.Type, end.final.Limit
			if p.Type == engine.Spot {
				p.Faced = p.FacedSpot
			}
			if p.FirstFill != 0 {
				end = bidEnd{at: p.FirstFill, filled: true}
			}
		}
		s := fillSample{Bucket: survival.BucketOf(int64(p.Limit), int64(p.Faced)), Waited: int64(max(end.at-p.Placed, 0)), Filled: end.filled}
		data, _ := json.Marshal(s)
		series := fillSeries(p.Market, p.Type)
		samples[series] = append(samples[series], store.SeriesEntry{Score: int64(end.at), Key: ids[i], Data: data})
		done = append(done, ids[i])
	}
	for series, es := range samples {
		if err := f.ss.AddSeries(ctx, series, es); err != nil {
			f.log.Warn("fill estimate: samples not stored", "series", series, "err", err)
		}
	}
	if err := f.ss.DeleteFacts(ctx, fillPlacements, done); err != nil {
		f.log.Warn("fill estimate: placements not removed", "err", err)
	}
}

// facedPrice is the price a bid of typ faces in market now: the spot
// clearing price, or the best reserved ask; 0 when there is none.
func facedPrice(e *engine.Engine, market string, typ engine.BidType) engine.Price {
	if typ == engine.Spot {
		if v, ok := e.Spot(market); ok && v.HasPrice {
			return v.Price
		}
		return 0
	}
	p, _ := e.BestAsk(market)
	return p
}

// FacedPrice is the price a bid of typ faces in market now, as recorded
// at placement; the request path uses it under its own engine read.
func FacedPrice(e *engine.Engine, market string, typ engine.BidType) engine.Price {
	return facedPrice(e, market, typ)
}

// Refresh refits every (market, type, bucket) from the newest samples and
// publishes the table. It never runs on the sequencer's goroutine.
func (f *FillEstimates) Refresh(ctx context.Context) error {
	var markets []engine.Market
	if f.read != nil {
		f.read(func(e *engine.Engine) {
			if e != nil {
				markets = e.Markets()
			}
		})
	}
	t := &fillTable{stats: map[fillKey]fillStat{}}
	for _, m := range markets {
		for _, typ := range []engine.BidType{engine.Reserved, engine.Spot} {
			es, err := f.ss.SeriesNewest(ctx, fillSeries(m.ID, typ), f.maxSamples)
			if err != nil {
				return err
			}
			byBucket := map[survival.Bucket][]survival.Observation{}
			for _, e := range es {
				var s fillSample
				if err := json.Unmarshal(e.Data, &s); err != nil {
					continue
				}
				byBucket[s.Bucket] = append(byBucket[s.Bucket], survival.Observation{Waited: time.Duration(s.Waited) * time.Millisecond, Filled: s.Filled})
			}
			for b, obs := range byBucket {
				t.stats[fillKey{m.ID, typ, b}] = fillStat{est: survival.EstimateOf(obs), samples: len(obs)}
			}
		}
	}
	f.table.Store(t)
	return nil
}

// Run is the worker: it processes queued digests as they come and
// refreshes the table every interval, until ctx ends.
func (f *FillEstimates) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-f.queue:
			f.process(ctx, d)
		case <-t.C:
			f.Drain(ctx) // what is queued first: the table then includes it
			if err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("fill estimate: refresh failed", "err", err)
			}
		}
	}
}

// Estimate returns the estimate for a bid of typ in market with limit
// facing price (0: none), as of the last refresh, and the number of
// samples in its bucket; est is nil with fewer than survival.MinSamples.
// It takes no lock.
func (f *FillEstimates) Estimate(market string, typ engine.BidType, limit, faced engine.Price) (est *survival.Estimate, samples int) {
	st := f.table.Load().stats[fillKey{market, typ, survival.BucketOf(int64(limit), int64(faced))}]
	return st.est, st.samples
}
