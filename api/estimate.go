package api

import (
	"encoding/json"
	"strconv"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/history"
	"github.com/gpux/gpux/survival"
)

// fillEstimateJSON is API.md's "fill_estimate": probabilities as decimal
// strings with 4 places, the median wait in whole seconds (null when the
// curve never falls to one half), and the samples it rests on.
type fillEstimateJSON struct {
	PFill1h       string `json:"p_fill_1h"`
	PFill24h      string `json:"p_fill_24h"`
	MedianSeconds *int64 `json:"median_seconds"`
	Samples       int    `json:"samples"`
}

func renderEstimate(e *survival.Estimate) *fillEstimateJSON {
	if e == nil {
		return nil
	}
	out := &fillEstimateJSON{
		PFill1h: strconv.FormatFloat(e.PFill1h, 'f', 4, 64), PFill24h: strconv.FormatFloat(e.PFill24h, 'f', 4, 64),
		Samples: e.Samples,
	}
	if e.Median != nil {
		s := int64(e.Median.Seconds())
		out.MedianSeconds = &s
	}
	return out
}

// estimateFor reads the estimate of a bid of typ in market with limit
// against the price it faces now (limit 0: at that price). The engine is
// read for the price only; the estimate comes from the table the
// background refresh publishes.
func (s *Server) estimateFor(market string, typ engine.BidType, limit engine.Price) (*fillEstimateJSON, int) {
	var faced engine.Price
	s.read(func(e *engine.Engine) { faced = history.FacedPrice(e, market, typ) })
	if limit == 0 {
		limit = faced
	}
	est, n := s.fills.Estimate(market, typ, limit, faced)
	return renderEstimate(est), n
}

// decorateBid adds the fill estimate to a bid that rests (a reserved bid
// resting unfilled, a spot bid waiting): "fill_estimate" (null with fewer
// than survival.MinSamples samples) and "fill_estimate_samples".
func decorateBid(s *Server, b engine.BidView, out *bidOut) {
	rests := (b.Type == engine.Reserved && b.Status == engine.BidResting) || (b.Type == engine.Spot && b.Status == engine.BidWaiting)
	if !rests {
		return
	}
	est, n := s.estimateFor(b.Market, b.Type, b.Limit)
	out.FillEstimate = json.RawMessage("null")
	if est != nil {
		out.FillEstimate, _ = json.Marshal(est)
	}
	out.FillEstimateSamples = &n
}
