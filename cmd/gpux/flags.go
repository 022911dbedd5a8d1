package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gpux/gpux/client"
)

// globals are the flags every command takes, before or after its name.
type globals struct {
	url     string
	apiKey  string
	json    bool
	timeout time.Duration
}

func (a *app) defaults() *globals {
	g := &globals{url: a.getenv("GPUX_URL"), apiKey: a.getenv("GPUX_API_KEY"), timeout: 30 * time.Second}
	if g.url == "" {
		g.url = "http://localhost:8080"
	}
	return g
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "server URL (env GPUX_URL)")
	fs.StringVar(&g.apiKey, "api-key", g.apiKey, "API key (env GPUX_API_KEY)")
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of a table")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "per-request timeout")
}

// parseLeading parses the global flags that come before the command name
// and returns the rest.
func (g *globals) parseLeading(args []string) ([]string, error) {
	fs := flag.NewFlagSet("gpux", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, usageError{err.Error()}
	}
	return fs.Args(), nil
}

// client returns the API client for g, retrying 429 and 503 as a person
// at a terminal would want (bounded, by Retry-After).
func (g *globals) client() *client.Client {
	hc := &http.Client{Timeout: g.timeout}
	return client.New(g.url, client.WithAPIKey(g.apiKey), client.WithHTTPClient(hc), client.WithRetry(client.DefaultRetry))
}

// cmdFlags is one command's flag set with the global flags on it too.
type cmdFlags struct {
	*flag.FlagSet
	a    *app
	name string
	args string // the positional arguments, for the usage line
}

func (a *app) flags(g *globals, name, args, about string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &cmdFlags{FlagSet: fs, a: a, name: name, args: args}
	g.register(fs)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := a.stdout
		fmt.Fprintf(w, "Usage: gpux %s [flags] %s\n\n%s\n\nFlags:\n", name, args, about)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return f
}

// parse parses flags anywhere among the arguments (the standard library
// stops at the first positional one) and checks the positional count is
// within [min, max] (max < 0: any). -h prints the usage and returns
// errHelp.
func (f *cmdFlags) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp // flag has printed the usage
			}
			return nil, usageError{fmt.Sprintf("%s: %v", f.name, err)}
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, usagef("usage: gpux %s [flags] %s", f.name, f.args)
	}
	return pos, nil
}

// errHelp ends a command after it printed its usage on request (exit 0).
var errHelp = errors.New("help shown")

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// fail prints err and returns its exit code.
func (a *app) fail(err error, g *globals) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(a.stderr, "gpux:", ue.msg)
		return exitUsage
	}
	var e *client.Error
	if errors.As(err, &e) {
		if g.json {
			b, _ := json.Marshal(map[string]any{"status": e.Status, "code": e.Code, "field": e.Field, "detail": e.Detail, "title": e.Title})
			fmt.Fprintln(a.stderr, string(b))
		} else {
			fmt.Fprintln(a.stderr, problemText(e))
		}
		if e.Status >= 500 || e.Status == http.StatusTooManyRequests {
			return exitUnavailable
		}
		return exitAPI
	}
	fmt.Fprintln(a.stderr, "gpux:", strings.TrimPrefix(err.Error(), "gpux: "))
	var ce cliError
	if errors.As(err, &ce) {
		return exitAPI
	}
	return exitUnavailable
}

// cliError is a failure that is neither usage nor transport, e.g. a
// cancel of which some ids failed (exit 1).
type cliError struct{ msg string }

func (e cliError) Error() string { return e.msg }

// problemText renders a problem for a person: status, code, detail, and
// the field at fault on its own line.
func problemText(e *client.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gpux: error %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg != "" {
		fmt.Fprintf(&b, ": %s", msg)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "\n  field: %s", e.Field)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "\n  retry after: %s", e.RetryAfter)
	}
	return b.String()
}

// parseTime reads an absolute or relative time: RFC 3339, "now", or a
// signed offset from now (+2h, -90m, +3d). With hour set the result is
// rounded down to the whole hour, as windows need.
func parseTime(s string, now time.Time, hour bool) (time.Time, error) {
	var t time.Time
	switch {
	case s == "now":
		t = now
	case strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-"):
		d, err := parseDuration(s[1:])
		if err != nil {
			return t, fmt.Errorf("%q: want RFC 3339 (2026-12-01T08:00:00Z), now, or +2h/-24h/+3d", s)
		}
		if s[0] == '-' {
			d = -d
		}
		t = now.Add(d)
	default:
		var err error
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return t, fmt.Errorf("%q: want RFC 3339 (2026-12-01T08:00:00Z), now, or +2h/-24h/+3d", s)
		}
	}
	t = t.UTC()
	if hour {
		t = t.Truncate(time.Hour)
	}
	return t, nil
}

// parseDuration is time.ParseDuration plus a whole-day suffix ("3d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3660 {
			return 0, fmt.Errorf("%q: want a whole number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 12h, 90m or 3d", s)
	}
	return d, nil
}

// window reads --start and --end/--for into a whole-hour window.
func window(now time.Time, start, end, dur string) (time.Time, time.Time, error) {
	s, err := parseTime(start, now, true)
	if err != nil {
		return s, s, usagef("--start %v", err)
	}
	switch {
	case end != "" && dur != "":
		return s, s, usagef("give --end or --for, not both")
	case dur != "":
		d, err := parseDuration(dur)
		if err != nil {
			return s, s, usagef("--for %v", err)
		}
		if d%time.Hour != 0 || d <= 0 {
			return s, s, usagef("--for %s: want whole hours", dur)
		}
		return s, s.Add(d), nil
	case end != "":
		e, err := parseTime(end, now, true)
		if err != nil {
			return s, s, usagef("--end %v", err)
		}
		return s, e, nil
	}
	return s, s, usagef("give --end or --for")
}

// parsePrice reads a fixed price ("2.39"), a reference peg
// ("ref:aws:0.40", optionally ":CAP:FLOOR") or a spot peg ("spot:-0.10").
// The numbers are checked by the server.
func parsePrice(s string) (client.Price, error) {
	parts := strings.Split(s, ":")
	switch parts[0] {
	case "ref", "reference":
		if len(parts) < 3 || len(parts) > 5 {
			return client.Price{}, fmt.Errorf("%q: want ref:PROVIDER:DISCOUNT[:CAP[:FLOOR]]", s)
		}
		p := client.ReferencePeg(parts[1], parts[2])
		if len(parts) > 3 {
			p.Peg.Cap = parts[3]
		}
		if len(parts) > 4 {
			p.Peg.Floor = parts[4]
		}
		return p, nil
	case "spot":
		if len(parts) != 2 {
			return client.Price{}, fmt.Errorf("%q: want spot:OFFSET", s)
		}
		return client.SpotPeg(parts[1]), nil
	}
	if len(parts) != 1 || s == "" {
		return client.Price{}, fmt.Errorf("%q: want a decimal, ref:PROVIDER:DISCOUNT or spot:OFFSET", s)
	}
	return client.FixedPrice(s), nil
}
