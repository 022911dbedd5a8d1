package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpux/gpux/engine"
)

// marketCollector exposes each market's state as Prometheus gauges, read
// from the engine at scrape time (so the sequencer pays nothing between
// scrapes and a scrape never shows a half-applied batch):
//
//	gpux_market_spot_price_usd        spot clearing price (absent when nothing clears)
//	gpux_market_spot_ask_usd          cheapest free spot floor (absent when none)
//	gpux_market_spot_supply_gpus      GPUs offered to spot this hour
//	gpux_market_spot_allocated_gpus   GPUs running spot
//	gpux_market_spot_waiting_gpus     GPUs bid for spot and not allocated
//	gpux_market_last_trade_price_usd  price of the last reserved fill (absent before one)
//	gpux_market_best_ask_usd          cheapest unsold listing capacity (absent when none)
//
// each labelled market, gpu and region. Prices leave integer ticks only
// here, for the exposition format, which has nothing but float64.
type marketCollector struct {
	s                                             *Server
	spot, spotAsk, supply, alloc, wait, last, ask *prometheus.Desc
}

func newMarketCollector(s *Server) *marketCollector {
	labels := []string{"market", "gpu", "region"}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, labels, nil) }
	return &marketCollector{
		s:       s,
		spot:    d("gpux_market_spot_price_usd", "Spot clearing price per GPU-hour; absent when nothing clears."),
		spotAsk: d("gpux_market_spot_ask_usd", "Cheapest spot floor with GPUs not in use; absent when none."),
		supply:  d("gpux_market_spot_supply_gpus", "GPUs offered to spot in the hour under way."),
		alloc:   d("gpux_market_spot_allocated_gpus", "GPUs running spot."),
		wait:    d("gpux_market_spot_waiting_gpus", "GPUs bid for spot and not allocated."),
		last:    d("gpux_market_last_trade_price_usd", "Price per GPU-hour of the last reserved fill; absent before the first."),
		ask:     d("gpux_market_best_ask_usd", "Cheapest unsold listing capacity per GPU-hour; absent when none."),
	}
}

var _ prometheus.Collector = (*marketCollector)(nil)

// registerMarketMetrics adds the per-market gauges to the server's registry.
func (s *Server) registerMarketMetrics() { s.metrics.reg.MustRegister(newMarketCollector(s)) }

func (c *marketCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.spot, c.spotAsk, c.supply, c.alloc, c.wait, c.last, c.ask} {
		ch <- d
	}
}

// Collect reads every market under the engine's read lock, then sends.
// Before recovery there is no engine and nothing is sent.
func (c *marketCollector) Collect(ch chan<- prometheus.Metric) {
	type sample struct {
		m               engine.Market
		spot            engine.SpotView
		last, ask       engine.Price
		hasLast, hasAsk bool
	}
	var samples []sample
	c.s.read(func(e *engine.Engine) {
		for _, m := range e.Markets() {
			b, _ := e.Book(m.ID)
			sm := sample{m: m, spot: b.Spot}
			if fs := e.Trades(m.ID, 1); len(fs) > 0 {
				sm.last, sm.hasLast = fs[0].Price, true
			}
			for _, l := range b.Asks {
				if !sm.hasAsk || l.Price < sm.ask {
					sm.ask, sm.hasAsk = l.Price, true
				}
			}
			samples = append(samples, sm)
		}
	})
	usd := func(p engine.Price) float64 { return float64(p) / float64(engine.TicksPerUSD) }
	for _, sm := range samples {
		lv := []string{sm.m.ID, sm.m.GPU, sm.m.Region}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		if sm.spot.HasPrice {
			gauge(c.spot, usd(sm.spot.Price))
		}
		if sm.spot.HasAsk {
			gauge(c.spotAsk, usd(sm.spot.Ask))
		}
		gauge(c.supply, float64(sm.spot.Supply))
		gauge(c.alloc, float64(sm.spot.Allocated))
		gauge(c.wait, float64(sm.spot.Waiting))
		if sm.hasLast {
			gauge(c.last, usd(sm.last))
		}
		if sm.hasAsk {
			gauge(c.ask, usd(sm.ask))
		}
	}
}
