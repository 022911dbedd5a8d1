package engine

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ID is a 16-byte identifier (a UUID; v7 when the sequencer makes it).
type ID [16]byte

// String formats the id as a canonical UUID.
func (id ID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// IsZero reports whether the id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a canonical UUID string.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("id %q: not a UUID", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("id %q: not a UUID", s)
	}
	return id, nil
}

func cmpID(a, b ID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// FeeAccount receives the platform fee. It exists from the start.
var FeeAccount = ID{15: 0xfe}

// Time is engine time: Unix milliseconds, UTC.
type Time int64

// Hour and Day in engine time units.
const (
	Second Time = 1000
	Minute Time = 60 * Second
	Hour   Time = 3600 * Second
	Day    Time = 24 * Hour
)

// HourStart truncates t to its hour.
func (t Time) HourStart() Time { return t - t%Hour }

// Price is USD per GPU-hour in ticks of 1/10000 USD.
type Price int64

// Money is an amount of USD in ticks of 1/10000 USD.
type Money int64

// TicksPerUSD is the number of ticks in one US dollar.
const TicksPerUSD = 10000

// Limits on inputs, chosen so no product of them overflows int64 (money
// bounds are in money.go).
const (
	MaxQuantity = 100_000               // GPUs in one order
	MaxPrice    = 100_000 * TicksPerUSD // USD per GPU-hour
	MaxHorizon  = 366 * Day
)

// String formats ticks as a decimal with at least two and at most four places.
func (p Price) String() string { return formatTicks(int64(p)) }

// String formats ticks as a decimal with at least two and at most four places.
func (m Money) String() string { return formatTicks(int64(m)) }

func formatTicks(v int64) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u // two's complement: also right for math.MinInt64
	}
	frac := strconv.FormatUint(u%TicksPerUSD+TicksPerUSD, 10)[1:] // 4 digits, zero-padded
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	s := strconv.FormatUint(u/TicksPerUSD, 10) + "." + frac
	if neg {
		return "-" + s
	}
	return s
}

// ParseTicks parses a non-negative decimal with at most four places into
// ticks. It accepts only digits with an optional fraction ("2", "2.39").
func ParseTicks(s string) (int64, error) {
	if s == "" || len(s) > 24 {
		return 0, fmt.Errorf("%q: not a decimal", s)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("%q: not a decimal", s)
	}
	if len(frac) > 4 {
		return 0, fmt.Errorf("%q: more than 4 decimal places", s)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: not a decimal", s)
		}
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 14 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 4-len(frac)), 10, 64)
	}
	return w*TicksPerUSD + f, nil
}

// Role is what an account may do.
type Role uint8

// Roles an account can hold (a bit set).
const (
	RoleBuyer Role = 1 << iota
	RoleOwner
	RoleAdmin
)

// Has reports whether r includes every role of q.
func (r Role) Has(q Role) bool { return r&q == q }

// Names lists the role names in a fixed order.
func (r Role) Names() []string {
	var out []string
	for _, x := range []struct {
		r Role
		n string
	}{{RoleBuyer, "buyer"}, {RoleOwner, "owner"}, {RoleAdmin, "admin"}} {
		if r.Has(x.r) {
			out = append(out, x.n)
		}
	}
	return out
}

// ParseRole maps a role name to its Role.
func ParseRole(s string) (Role, bool) {
	switch s {
	case "buyer":
		return RoleBuyer, true
	case "owner":
		return RoleOwner, true
	case "admin":
		return RoleAdmin, true
	}
	return 0, false
}

// BidType tells reserved from spot bids.
type BidType uint8

// Bid types.
const (
	Reserved BidType = iota + 1
	Spot
)

func (t BidType) String() string {
	switch t {
	case Reserved:
		return "reserved"
	case Spot:
		return "spot"
	}
	return "unknown"
}

// BidStatus is a bid's life-cycle state.
type BidStatus uint8

// Bid statuses, as the API names them.
const (
	BidResting BidStatus = iota + 1
	BidFilled
	BidPartiallyFilled
	BidRunning
	BidWaiting
	BidCancelled
	BidExpired
	BidRejected
	BidPreempting // spot: outbid, keeping its GPUs until preempt_at
)

func (s BidStatus) String() string {
	return [...]string{"", "resting", "filled", "partially_filled", "running", "waiting", "cancelled", "expired", "rejected", "preempting"}[s]
}

// Open reports whether the bid can still trade.
func (s BidStatus) Open() bool {
	return s == BidResting || s == BidPartiallyFilled || s == BidRunning || s == BidWaiting || s == BidPreempting
}

// ListingStatus is a listing's life-cycle state.
type ListingStatus uint8

// Listing statuses, as the API names them.
const (
	ListingActive ListingStatus = iota + 1
	ListingCancelled
	ListingEnded
)

func (s ListingStatus) String() string {
	return [...]string{"", "active", "cancelled", "ended"}[s]
}

// Market is one GPU model in one region.
type Market struct {
	ID     string // "<gpu>.<region>"
	GPU    string
	Region string
	// PreemptionNoticeSeconds is how long an outbid spot allocation keeps
	// its GPUs before they pass to the bid that outbid it. 0 means the
	// default (DefaultPreemptionNotice); a negative value means none: an
	// outbid allocation is preempted at once.
	PreemptionNoticeSeconds int64
}

// DefaultPreemptionNotice is a market's notice when its configuration
// leaves it 0: two minutes, as AWS gives.
const DefaultPreemptionNotice = 120

// MaxPreemptionNotice bounds the configurable notice (one hour).
const MaxPreemptionNotice = 3600

// NoticeSeconds is the market's preemption notice in seconds, as in force.
func (m Market) NoticeSeconds() int64 { return int64(m.Notice() / Second) }

// Notice is the market's preemption notice in engine time.
func (m Market) Notice() Time {
	switch {
	case m.PreemptionNoticeSeconds == 0:
		return DefaultPreemptionNotice * Second
	case m.PreemptionNoticeSeconds < 0:
		return 0
	}
	return Time(min(m.PreemptionNoticeSeconds, MaxPreemptionNotice)) * Second
}

// DefaultGPUs and DefaultRegions make the default catalogue.
var (
	DefaultGPUs    = []string{"h100-sxm", "h200", "b200", "a100-80gb", "a100-40gb", "l40s", "l4", "mi300x"}
	DefaultRegions = []string{"us-east", "us-west", "eu-west"}
)

// Catalogue returns every gpu × region market, in the order given.
func Catalogue(gpus, regions []string) []Market {
	var out []Market
	for _, g := range gpus {
		for _, r := range regions {
			out = append(out, Market{ID: g + "." + r, GPU: g, Region: r})
		}
	}
	return out
}

// ValidMarketID reports whether id has the form <gpu>.<region> in lowercase
// letters, digits and dashes.
func ValidMarketID(id string) bool {
	gpu, region, ok := strings.Cut(id, ".")
	return ok && validName(gpu) && validName(region)
}

func validName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
