package pricing

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestForwardCurveBuckets(t *testing.T) {
	const h = time.Hour
	now := t0
	order := func(price int64, startIn, length time.Duration) Order {
		return Order{Price: price, Quantity: 1, Start: now.Add(startIn), End: now.Add(startIn + length)}
	}
	tests := []struct {
		name     string
		order    Order
		tenor    string
		duration string
	}{
		{"under way", order(1, -2*h, 4*h), Tenor24h, DurationLE24h},
		{"starts now", order(1, 0, h), Tenor24h, DurationLE24h},
		{"starts just before 24h", order(1, 24*h-time.Nanosecond, h), Tenor24h, DurationLE24h},
		{"starts at 24h", order(1, 24*h, h), Tenor7d, DurationLE24h},
		{"starts just before 7d", order(1, 7*24*h-time.Nanosecond, h), Tenor7d, DurationLE24h},
		{"starts at 7d", order(1, 7*24*h, h), Tenor30d, DurationLE24h},
		{"starts at 30d", order(1, 30*24*h, h), TenorLater, DurationLE24h},
		{"lasts exactly 24h", order(1, 0, 24*h), Tenor24h, DurationLE24h},
		{"lasts 25h", order(1, 0, 25*h), Tenor24h, DurationLE7d},
		{"lasts exactly 7d", order(1, 0, 7*24*h), Tenor24h, DurationLE7d},
		{"lasts 7d and an hour", order(1, 0, 7*24*h+h), Tenor24h, DurationLonger},
		{"a month starting in a month", order(1, 40*24*h, 30*24*h), TenorLater, DurationLonger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ForwardCurve(now, []Order{tt.order}, nil)
			want := []CurvePoint{{Tenor: tt.tenor, Duration: tt.duration, HasBid: true, BestBid: 1, BidQuantity: 1}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ForwardCurve = %+v, want %+v", got, want)
			}
		})
	}
}

func TestForwardCurve(t *testing.T) {
	const h = time.Hour
	now := t0
	o := func(price, qty int64, startIn, length time.Duration) Order {
		return Order{Price: price, Quantity: qty, Start: now.Add(startIn), End: now.Add(startIn + length)}
	}
	bids := []Order{
		o(20000, 4, 2*h, 8*h),
		o(23900, 2, 3*h, 8*h), // best bid of 24h×le24h
		o(23900, 6, 1*h, 1*h), // same price: quantities add up
		o(19000, 8, 10*24*h, 30*24*h),
		o(99999, 1, 0, 0),      // empty window: skipped
		o(99999, 0, 2*h, h),    // no quantity: skipped
		o(-1, 3, 2*h, h),       // negative price: skipped
		o(99999, 1, -3*h, 2*h), // already over: skipped
		o(99999, 1, 2*h, -1*h), // ends before it starts: skipped
	}
	asks := []Order{
		o(26000, 8, 2*h, 8*h),
		o(25000, 8, 5*h, 2*h), // best ask of 24h×le24h
		o(31000, 16, 3*24*h, 3*24*h),
	}
	got := ForwardCurve(now, bids, asks)
	want := []CurvePoint{
		{Tenor: Tenor24h, Duration: DurationLE24h, HasBid: true, BestBid: 23900, BidQuantity: 8, HasAsk: true, BestAsk: 25000, AskQuantity: 8},
		{Tenor: Tenor7d, Duration: DurationLE7d, HasAsk: true, BestAsk: 31000, AskQuantity: 16},
		{Tenor: Tenor30d, Duration: DurationLonger, HasBid: true, BestBid: 19000, BidQuantity: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ForwardCurve =\n %+v\nwant\n %+v", got, want)
	}
	// The same orders in another order give the same curve.
	rb := append([]Order(nil), bids...)
	ra := append([]Order(nil), asks...)
	for i, j := 0, len(rb)-1; i < j; i, j = i+1, j-1 {
		rb[i], rb[j] = rb[j], rb[i]
	}
	ra[0], ra[2] = ra[2], ra[0]
	if again := ForwardCurve(now, rb, ra); !reflect.DeepEqual(again, want) {
		t.Errorf("ForwardCurve depends on input order: %+v", again)
	}
	if got := ForwardCurve(now, nil, nil); got != nil {
		t.Errorf("ForwardCurve of no orders = %v, want nil", got)
	}

	js, err := json.Marshal(got[:2])
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `[{"tenor":"24h","duration":"le24h","best_bid":"2.39","bid_quantity":8,"best_ask":"2.50","ask_quantity":8},` +
		`{"tenor":"7d","duration":"le7d","best_bid":null,"bid_quantity":0,"best_ask":"3.10","ask_quantity":16}]`
	if string(js) != wantJSON {
		t.Errorf("JSON\n got %s\nwant %s", js, wantJSON)
	}
}
