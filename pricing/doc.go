// Package pricing owns gpux's price references and indices: the table of
// public cloud list prices (reference rates) the exchange compares its
// markets against, the discount of a market price against such a rate, the
// rolling volume-weighted average of trades, OHLC candles, and the forward
// curve of resting orders. Subpackage importer reads the providers' own
// price files into a rates table.
//
// Which rate a market compares against (Table.Choose, docs/PRICES.md): of
// the provider's rows of that price type for the GPU, a dated row before an
// undated one, then a row in the market's region (MarketRegion maps
// provider regions to us-east, us-west, eu-west), then the newest as_of,
// then US East, the lowest price, region and instance type. A rate is
// stale when its as_of is older than a limit (DefaultStaleAfter, 120 days)
// at a time the caller passes in (the API passes the engine's clock).
//
// Prices are integer ticks of 1/10000 USD per GPU-hour (int64), never
// floats; FormatPrice and ParsePrice convert to and from the API's decimal
// strings. Times are time.Time and are always passed in: the package reads
// no clock, starts no goroutines and does no I/O except reading a rates file
// in LoadFile. Of gpux it imports only engine's types (the price board is
// fed engine events and turns a table into engine reference rates); the
// engine does not import it.
//
// A Table is immutable once built and safe for concurrent use; a Board's
// table can be swapped (SetTable) while it serves. The index types (VWAP,
// CandleSeries) are per-market state owned by one goroutine and are not
// safe for concurrent use.
package pricing
