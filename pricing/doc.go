// Package pricing owns gpux's price references and indices: the table of
// public cloud list prices (reference rates) the exchange compares its
// markets against, the discount of a market price against such a rate, the
// rolling volume-weighted average of trades, OHLC candles, and the forward
// curve of resting orders.
//
// Prices are integer ticks of 1/10000 USD per GPU-hour (int64), never
// floats; FormatPrice and ParsePrice convert to and from the API's decimal
// strings. Times are time.Time and are always passed in: the package reads
// no clock, starts no goroutines and does no I/O except reading a rates file
// in LoadFile. It imports nothing of gpux, so the engine, the runtime and the
// API can all use it.
//
// A Table is immutable once built and safe for concurrent use. The index
// types (VWAP, CandleSeries) are per-market state owned by one goroutine and
// are not safe for concurrent use.
package pricing
