package engine

// BestAsk returns the market's best reserved ask: the lowest reserve among
// listings with GPUs free in every hour from now to their end (the first
// ask Book would show, without building the book). ok is false when the
// market is unknown or has no such listing. The read side records it as
// the price a resting reserved bid faced when it was placed.
func (e *Engine) BestAsk(market string) (p Price, ok bool) {
	m := e.markets[market]
	if m == nil {
		return 0, false
	}
	hour := e.now.HourStart()
	m.listings.Ascend(func(l *Listing) bool {
		from := max(l.Start, hour)
		if from >= l.End {
			return true
		}
		if l.Quantity-l.sold.Max(l.hourIndex(from), l.sold.n) > 0 {
			p, ok = l.Reserve, true
			return false
		}
		return true
	})
	return p, ok
}
