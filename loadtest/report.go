package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is everything one run measured and checked. It is printed as a
// table and, with -json, written as JSON.
type Report struct {
	Target      string   `json:"target"`
	Mode        string   `json:"mode"`
	Rate        int      `json:"rate,omitempty"`
	Concurrency int      `json:"concurrency,omitempty"`
	Duration    string   `json:"duration"`
	Seed        uint64   `json:"seed"`
	Tag         string   `json:"run_tag"`
	Mix         string   `json:"mix"`
	Markets     []string `json:"markets"`
	Buyers      int      `json:"buyers"`
	Owners      int      `json:"owners"`
	Started     string   `json:"started"`

	ElapsedSec  float64       `json:"elapsed_sec"`
	Offered     int64         `json:"offered"`
	Acked       int64         `json:"acked"`
	AckedPerSec float64       `json:"acked_per_sec"`
	Errors      int64         `json:"errors"`
	Latency     Latency       `json:"latency"`
	Ops         []OpReport    `json:"ops"`
	ErrorsBy    []ErrorReport `json:"errors_by_class"`
	// CPU used during the load: this process (the generator and its
	// subscribers) and the target (from its /metrics, when present).
	GeneratorCPUSec float64  `json:"generator_cpu_sec"`
	TargetCPUSec    *float64 `json:"target_cpu_sec,omitempty"`

	Feed     FeedReport `json:"feed"`
	Journal  *Journal   `json:"journal,omitempty"`
	Baseline *Baseline  `json:"baseline,omitempty"`
	Verify   Verify     `json:"verify"`
}

// OpReport is one op's line.
type OpReport struct {
	Op          string  `json:"op"`
	Acked       int64   `json:"acked"`
	Errors      int64   `json:"errors"`
	AckedPerSec float64 `json:"acked_per_sec"`
	Latency     Latency `json:"latency"`
}

// ErrorReport is one error class: "<status> <code>" or "transport: …".
type ErrorReport struct {
	Class   string `json:"class"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

func (r *Report) fillLoad(rec *recorder, res loadResult) {
	r.ElapsedSec = res.Elapsed.Seconds()
	r.Offered = res.Offered
	r.Acked = rec.acked.Load()
	r.Errors = rec.failed.Load()
	r.Latency = rec.all.Summary()
	if res.Elapsed > 0 {
		r.AckedPerSec = float64(r.Acked) / res.Elapsed.Seconds()
	}
	for op := Op(0); op < numOps; op++ {
		k := &rec.kinds[op]
		o := OpReport{Op: op.String(), Acked: k.acked.Load(), Errors: k.failed.Load(), Latency: k.hist.Summary()}
		if res.Elapsed > 0 {
			o.AckedPerSec = float64(o.Acked) / res.Elapsed.Seconds()
		}
		r.Ops = append(r.Ops, o)
	}
	rec.mu.Lock()
	for class, e := range rec.errs {
		r.ErrorsBy = append(r.ErrorsBy, ErrorReport{Class: class, Count: e.count, Example: e.example})
	}
	rec.mu.Unlock()
	slices.SortFunc(r.ErrorsBy, func(a, b ErrorReport) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Class, b.Class)
	})
}

// bidAckedPerSec is the target's acknowledged bids (reserved and spot) per
// second: what the baseline serves.
func (r *Report) bidAckedPerSec() float64 {
	v := 0.0
	for _, o := range r.Ops {
		if o.Op == OpReserved.String() || o.Op == OpSpot.String() {
			v += o.AckedPerSec
		}
	}
	return v
}

func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

func fms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// writeText prints the final table.
func (r *Report) writeText(w io.Writer) {
	load := fmt.Sprintf("%d workers", r.Concurrency)
	if r.Mode == ModeOpen {
		load = fmt.Sprintf("%d req/s offered", r.Rate)
	}
	fmt.Fprintf(w, "\ngpux load test: %s mode, %s, %s against %s (seed %d, run %s)\n", r.Mode, load, r.Duration, r.Target, r.Seed, r.Tag)
	fmt.Fprintf(w, "markets %s; mix %s; %d buyers, %d owners\n\n", strings.Join(r.Markets, ","), r.Mix, r.Buyers, r.Owners)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "request\tacked\tacked/s\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	row := func(name string, acked int64, perSec float64, errs int64, l Latency) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, commas(acked), f1(perSec), commas(errs),
			fms(l.P50), fms(l.P90), fms(l.P99), fms(l.P999), fms(l.Max))
	}
	for _, o := range r.Ops {
		row(o.Op, o.Acked, o.AckedPerSec, o.Errors, o.Latency)
	}
	row("all", r.Acked, r.AckedPerSec, r.Errors, r.Latency)
	tw.Flush()
	fmt.Fprintf(w, "\nacknowledged orders/s: %s (%s acked of %s sent in %.1fs)\n", f1(r.AckedPerSec), commas(r.Acked), commas(r.Offered), r.ElapsedSec)
	fmt.Fprintf(w, "CPU during the load: generator %.1f s", r.GeneratorCPUSec)
	if r.TargetCPUSec != nil {
		fmt.Fprintf(w, ", target %.1f s", *r.TargetCPUSec)
	}
	fmt.Fprintf(w, " (of %.1f s wall)\n", r.ElapsedSec)

	if len(r.ErrorsBy) > 0 {
		fmt.Fprintln(w, "\nerrors by class:")
		for _, e := range r.ErrorsBy {
			fmt.Fprintf(w, "  %-36s %10s   e.g. %s\n", e.Class, commas(e.Count), truncate(e.Example, 100))
		}
	}

	if f := r.Feed; f.Subscribers > 0 {
		fmt.Fprintf(w, "\nfeed: %d subscribers (%d connected, %d failed to connect; %s readers), each on %s\n",
			f.Subscribers, f.Connected, f.DialFailed, f.Reader, strings.Join(f.Channels, " "))
		if f.DialError != "" {
			fmt.Fprintf(w, "  first dial error: %s\n", truncate(f.DialError, 120))
		}
		fmt.Fprintf(w, "  messages %s (%s/s), updates %s; delivery latency (event ts → receive) p50 %s ms, p99 %s ms, max %s ms\n",
			commas(f.Messages), f1(f.MessagesPerSec), commas(f.Updates), fms(f.Latency.P50), fms(f.Latency.P99), fms(f.Latency.Max))
		fmt.Fprintf(w, "  slow clients dropped (close 1013) %d, other closes %d, going away %d, seq gaps %d", f.SlowDropped, f.OtherClosed, f.GoingAway, f.Gaps)
		if f.ServerDropped != nil {
			fmt.Fprintf(w, "; server counted %.0f dropped", *f.ServerDropped)
		}
		fmt.Fprintln(w)
		if b := f.Baseline; b != nil {
			fmt.Fprintf(w, "  baseline (bare broadcast, same library, the same %d updates replayed to %d subscribers): %s messages (%s/s), p50 %s ms, p99 %s ms, max %s ms, gaps %d, dropped %d\n",
				b.Replayed, b.Connected, commas(b.Messages), f1(b.MessagesPerSec), fms(b.Latency.P50), fms(b.Latency.P99), fms(b.Latency.Max), b.Gaps, b.Dropped)
			fmt.Fprintf(w, "  target ÷ baseline: %.3f messages/s, %.2f p99 latency\n", b.MessagesRatio, b.P99Ratio)
		}
	}

	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "\nbaseline (bare Fiber, POST /v1/bids → 201 {}, mix %s): %s acked/s, p50 %s ms, p99 %s ms, %d errors\n",
			b.Mix, f1(b.AckedPerSec), fms(b.Latency.P50), fms(b.Latency.P99), b.Errors)
		fmt.Fprintf(w, "  target ÷ baseline: %.3f (all orders), %.3f (bids only)\n", b.Ratio, b.BidRatio)
	}
	if j := r.Journal; j != nil {
		fmt.Fprint(w, "\njournal:")
		if j.CommandsPerSec != nil {
			fmt.Fprintf(w, " target journaled %.0f commands/s", *j.CommandsPerSec)
			if j.MeanBatch != nil {
				fmt.Fprintf(w, " in batches of %.1f", *j.MeanBatch)
			}
			if j.MeanAppendMs != nil {
				fmt.Fprintf(w, " (mean append %.3f ms)", *j.MeanAppendMs)
			}
			fmt.Fprint(w, ";")
		} else {
			fmt.Fprint(w, " no journal figures on the target's /metrics;")
		}
		switch {
		case j.RawXADDPerSec != nil:
			fmt.Fprintf(w, " raw pipelined XADD (pipelines of %d) %.0f entries/s", j.RawXADDPipeline, *j.RawXADDPerSec)
		case j.RawXADDError != "":
			fmt.Fprintf(w, " raw XADD failed: %s", j.RawXADDError)
		}
		fmt.Fprintln(w)
	}

	v := r.Verify
	fmt.Fprintln(w)
	if v.OK {
		fmt.Fprintf(w, "verify: OK: ")
	} else {
		fmt.Fprintf(w, "VERIFY FAILED: ")
	}
	fmt.Fprintf(w, "%s bids and %s listings read back (%d reconciled, %d adopted, %d cancelled at teardown)\n",
		commas(int64(v.BidsRead)), commas(int64(v.ListingsRead)), v.Reconciled, v.Adopted, v.Cancelled)
	fmt.Fprintf(w, "  fills %s, GPU-hours bids %s = listings %s; buyers −%s USD = reserved fills %s + spot %s; owners +%s USD (fills net %s, spot %s); fees %s\n",
		commas(int64(v.Fills)), commas(v.BidGPUHours), commas(v.ListGPUHours), v.BuyersDecr, v.ReservedCost, v.SpotSpent,
		v.OwnersIncr, v.ListingNet, v.SpotEarned, v.ImpliedFees)
	if v.FeedChecked {
		fmt.Fprintf(w, "  feed: subscriber 0 saw %s of the %s fills between the run's accounts on trades:<market>\n",
			commas(int64(v.FeedTrades)), commas(int64(v.FeedFills)))
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, f := range v.Failures {
		fmt.Fprintf(w, "  FAIL: %s\n", f)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
