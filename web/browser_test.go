package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gpux/gpux/client"
	"github.com/gpux/gpux/internal/gpuxdtest"
)

// The browser test loads the dashboard from a real gpuxd (built from
// cmd/gpuxd, --demo, in-memory journal) in headless Chromium and checks
// what a person would: the prices table changes when a trade arrives over
// the websocket (with no second REST fetch), the market page draws its
// charts, and the page fits a 375 px wide screen with every control
// labelled. Demo traffic runs in other markets; the test trades only in
// testMarket, which the demo leaves alone.
//
// GPUX_SCREENSHOT=docs/dashboard.png (relative to the repository root)
// saves the prices page there and the market page next to it
// (dashboard-market.png). A failing run keeps screenshots in a directory
// it prints.

const testMarket = "h100-sxm.us-west"

func chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium not found (apt-get install -y chromium): the dashboard browser test did not run"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIP: " + msg)
	return ""
}

// startGpuxd runs cmd/gpuxd (in-memory journal) with args and returns its
// URL; the admin key is "admin".
func startGpuxd(tb testing.TB, args ...string) string {
	tb.Helper()
	return gpuxdtest.Start(tb, gpuxdtest.Binary(tb), gpuxdtest.Options{
		Args: append([]string{"--addr", "127.0.0.1:0", "--admin-key", "admin", "--log-format", "json",
			"--rate-limit", "0"}, args...),
		Env:          append(os.Environ(), "GPUX_REDIS_URL="),
		Graceful:     true,
		ReadyTimeout: 30 * time.Second,
	}).URL()
}

func TestMain(m *testing.M) {
	code := m.Run()
	gpuxdtest.Cleanup()
	os.Exit(code)
}

// browser starts headless Chromium with a fresh profile and collects the
// page's uncaught exceptions and console errors.
func browser(tb testing.TB, execPath string) (context.Context, func() []string) {
	tb.Helper()
	profile, err := os.MkdirTemp("", "gpux-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for range 50 { // Chromium's children may still write for a moment
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		tb.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// shots saves screenshots of failing steps in a directory that outlives
// the test and says where.
type shots struct {
	tb  testing.TB
	ctx context.Context
	dir string
}

func (s *shots) save(name string) string {
	if s.dir == "" {
		d, err := os.MkdirTemp("", "gpux-dashboard-failure-")
		if err != nil {
			return ""
		}
		s.dir = d
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return ""
	}
	path := filepath.Join(s.dir, name+".png")
	if os.WriteFile(path, png, 0o644) != nil {
		return ""
	}
	return path
}

// step runs a browser action and fails the test with a screenshot when it
// fails.
func step[T any](s *shots, name string, timeout time.Duration, a chromedp.Action[T]) T {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		s.tb.Fatalf("%s: %v (screenshot: %s)", name, err, s.save(name))
	}
	return v
}

func (s *shots) fail(name, format string, args ...any) {
	s.tb.Helper()
	s.tb.Errorf("%s: %s (screenshot: %s)", name, fmt.Sprintf(format, args...), s.save(name))
}

func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	execPath := chromium(t)
	// Every dated row of the built-in table is more than an hour old, so
	// with this limit every reference rate is stale whatever today's date.
	url := startGpuxd(t, "--demo", "--rates-stale-after", "1h")
	ctx, problems := browser(t, execPath)
	s := &shots{tb: t, ctx: ctx}

	// Accounts and an owner's capacity, made through the API as any
	// client would.
	bg := t.Context()
	admin := client.New(url, client.WithAPIKey("admin"))
	owner, err := admin.CreateAccount(bg, client.CreateAccountRequest{Name: "owner", Roles: []string{client.RoleOwner}})
	if err != nil {
		t.Fatal(err)
	}
	buyer, err := admin.CreateAccount(bg, client.CreateAccountRequest{Name: "buyer", Roles: []string{client.RoleBuyer}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Deposit(bg, buyer.ID, "100000"); err != nil {
		t.Fatal(err)
	}
	asOwner, asBuyer := admin.WithKey(owner.APIKey), admin.WithKey(buyer.APIKey)
	hour := time.Now().UTC().Truncate(time.Hour)
	if _, err := asOwner.PlaceListing(bg, client.ListingRequest{Market: testMarket, Quantity: 8, Start: hour,
		End: hour.Add(72 * time.Hour), ReservePrice: client.FixedPrice("3.10"), SpotPriceFloor: client.FixedPrice("2.20")}); err != nil {
		t.Fatal(err)
	}
	trade := func(qty int, limit string, from, to int) client.Bid {
		t.Helper()
		b, err := asBuyer.PlaceBid(bg, client.BidRequest{Type: client.BidReserved, Market: testMarket, Quantity: qty,
			Start: hour.Add(time.Duration(from) * time.Hour), End: hour.Add(time.Duration(to) * time.Hour), LimitPrice: client.FixedPrice(limit)})
		if err != nil || len(b.Fills) == 0 {
			t.Fatalf("bid: %+v, %v", b, err)
		}
		return b
	}

	// 1. The prices page: the REST snapshot, then live.
	lastCell := fmt.Sprintf(`document.querySelector('tr[data-market=%q] [data-col="last"]')`, testMarket)
	step(s, "load", 30*time.Second, chromedp.Navigate(url+"/"))
	step(s, "ready", 30*time.Second, chromedp.Poll[bool](`document.body.dataset.ready === "true" && `+lastCell+` !== null`))
	if got := step(s, "last before", 5*time.Second, chromedp.Evaluate[string](lastCell+`.textContent`)); got != "–" {
		s.fail("last before", "last trade of %s: got %q, want – (no trade yet)", testMarket, got)
	}
	if got := step(s, "aws", 5*time.Second, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('tr[data-market=%q] [data-col="aws"]').textContent`, testMarket))); !strings.HasPrefix(got, "6.88") {
		s.fail("aws", "AWS column: got %q, want the on-demand rate 6.88", got)
	}
	// The stale AWS rate carries a visible marker whose tooltip says what
	// it means, and the legend under the table explains it too.
	awsStale := fmt.Sprintf(`document.querySelector('tr[data-market=%q] [data-col="aws"] .stale')`, testMarket)
	if got := step(s, "stale marker", 5*time.Second, chromedp.Evaluate[string](`(() => { const m = `+awsStale+`;
		return m ? m.textContent + " | " + m.title + " | " + m.parentElement.title : "none"; })()`)); !strings.HasPrefix(got, "stale | stale: this rate is older") || !strings.HasSuffix(got, ", stale)") {
		s.fail("stale marker", "AWS cell's stale marker (text | tooltip | cell tooltip): got %q, want a visible \"stale\" explained by its tooltip", got)
	}
	if got := step(s, "stale legend", 5*time.Second, chromedp.Evaluate[string](`(() => { const l = document.querySelector('#view-prices .legend');
		return l && l.getClientRects().length ? l.textContent.replace(/\s+/g, " ") : ""; })()`)); !strings.Contains(got, "stale marks a rate published longer ago than this server's staleness limit") {
		s.fail("stale legend", "legend under the prices table: got %q, want it to explain the stale marker", got)
	}
	step(s, "feed live", 20*time.Second, chromedp.Poll[bool](`window.__gpux.stats.snapshots > 0`))

	trade(2, "3.20", 3, 9) // fills at the listing's 3.10
	step(s, "price after trade", 30*time.Second, chromedp.Poll[bool](lastCell+`.textContent === "3.10"`, chromedp.WithPollingInterval(100*time.Millisecond)))
	discount := step(s, "discount", 5*time.Second, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('tr[data-market=%q] [data-col="aws"] .disc').textContent`, testMarket)))
	if discount != "54.9% less" { // 1 − 3.10 / 6.88
		s.fail("discount", "AWS discount: got %q, want 54.9%% less", discount)
	}
	if n := step(s, "rest count", 5*time.Second, chromedp.Evaluate[int](`window.__gpux.stats.rest["/v1/prices"]`)); n != 1 {
		s.fail("rest count", "GET /v1/prices: got %d fetches, want 1 (the change must come over the websocket)", n)
	}
	// A missed message (a seq that skips) makes the page resubscribe and
	// take a fresh snapshot instead of showing a state it cannot trust.
	snaps := step(s, "snapshots", 5*time.Second, chromedp.Evaluate[int](`window.__gpux.stats.snapshots`))
	step(s, "gap", 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.__gpux.feed.receive(JSON.stringify(
		{channel: "prices", type: "update", seq: window.__gpux.feed.last.get("prices") + 5, data: {markets: []}, ts: new Date().toISOString()}))`))
	step(s, "resubscribed", 20*time.Second, chromedp.Poll[bool](fmt.Sprintf(`window.__gpux.stats.gaps === 1 && window.__gpux.stats.snapshots > %d`, snaps)))
	if got := step(s, "last after gap", 5*time.Second, chromedp.Evaluate[string](lastCell+`.textContent`)); got != "3.10" {
		s.fail("last after gap", "last trade after the resubscription: got %q, want 3.10", got)
	}
	if os.Getenv("GPUX_SCREENSHOT") != "" {
		step(s, "demo prices", 30*time.Second, chromedp.Poll[bool](`[...document.querySelectorAll('td[data-col="spot"]')].filter(td => td.textContent !== "–").length >= 3`))
		screenshot(t, s, os.Getenv("GPUX_SCREENSHOT"))
	}

	// 2. The market page: charts from REST history, then live.
	step(s, "market page", 10*time.Second, chromedp.Navigate(url+"/#/market/"+testMarket))
	step(s, "candles", 30*time.Second, chromedp.Poll[bool](`window.__gpux.charts.candles && window.__gpux.charts.candles.data[0].length >= 1`))
	if _, err := asBuyer.PlaceBid(bg, client.BidRequest{Type: client.BidSpot, Market: testMarket, Quantity: 2, LimitPrice: client.FixedPrice("2.90")}); err != nil {
		t.Fatal(err)
	}
	second := trade(1, "3.50", 10, 12)
	step(s, "live trade row", 30*time.Second, chromedp.Poll[bool](fmt.Sprintf(`[...document.querySelectorAll('#trades tbody tr')].length >= 2`)))
	step(s, "spot chart", 30*time.Second, chromedp.Poll[bool](`window.__gpux.charts.spot && window.__gpux.charts.spot.data[0].length >= 1`))
	if got := step(s, "cloud card", 5*time.Second, chromedp.Evaluate[string](`(() => { const m = document.querySelector('#card-cloud .stale');
		return m ? m.textContent + " | " + m.title : "none"; })()`)); !strings.HasPrefix(got, "stale | stale: this rate is older") {
		s.fail("cloud card", "on-demand card's stale marker: got %q, want \"stale\" with its tooltip", got)
	}
	if got := step(s, "spot card", 5*time.Second, chromedp.Evaluate[string](`document.querySelector('#card-spot').textContent`)); got != "2.20" {
		s.fail("spot card", "spot price card: got %q, want 2.20 (the floor clears the lone spot bid)", got)
	}
	// Drawn, not just created: count pixels of the candle colours on the
	// candle chart's canvas.
	painted := step(s, "painted", 10*time.Second, chromedp.Evaluate[int](`(() => {
		const c = document.querySelector('#chart-candles canvas');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) {
			const [r, g, b, a] = [d[i], d[i+1], d[i+2], d[i+3]];
			if (a > 200 && ((r < 40 && g > 80 && g < 130 && b < 70) || (r > 130 && r < 190 && g < 40 && b < 70))) n++;
		}
		return n;
	})()`))
	if painted < 20 {
		s.fail("painted", "candle chart: %d pixels in the candle colours, want a drawn candle", painted)
	}
	if id := step(s, "trade id", 5*time.Second, chromedp.Evaluate[string](`window.__gpux.state.trades[0].id`)); id != second.Fills[0].ID {
		s.fail("trade id", "newest trade on the page: got %s, want %s", id, second.Fills[0].ID)
	}
	if os.Getenv("GPUX_SCREENSHOT") != "" {
		p := os.Getenv("GPUX_SCREENSHOT")
		screenshot(t, s, strings.TrimSuffix(p, filepath.Ext(p))+"-market"+filepath.Ext(p))
	}

	// 3. A phone: 375 px wide, nothing wider than the screen, every
	// control labelled.
	step(s, "phone", 10*time.Second, chromedp.EmulateViewport(375, 812))
	for _, page := range []string{"/#/", "/#/market/" + testMarket} {
		step(s, "phone "+page, 10*time.Second, chromedp.Navigate(url+page))
		step(s, "phone ready "+page, 30*time.Second, chromedp.Poll[bool](`document.body.dataset.ready === "true"`))
		if w := step(s, "width "+page, 5*time.Second, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 375 {
			s.fail("width", "%s at 375 px: the page is %d px wide (tables must scroll in their own box)", page, w)
		}
		unlabelled := step(s, "labels "+page, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input, select')]
			.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id || e.outerHTML)`))
		if len(unlabelled) > 0 {
			s.fail("labels", "%s: controls without a label: %v", page, unlabelled)
		}
		if low := step(s, "contrast "+page, 10*time.Second, chromedp.Evaluate[[]string](contrastJS)); len(low) > 0 {
			s.fail("contrast", "%s: text under 4.5:1 contrast: %v", page, low)
		}
	}
	if p := problems(); len(p) > 0 {
		s.fail("console", "the page logged errors:\n%s", strings.Join(p, "\n"))
	}
	if t.Failed() && s.dir != "" {
		t.Logf("screenshots of the failures: %s", s.dir)
	}
}

// screenshot saves the page to path, relative to the repository root.
func screenshot(t *testing.T, s *shots, path string) {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join("..", path)
	}
	// Changed cells flash for a moment; a picture should not.
	step(s, "no flash", 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('.flash').forEach(e => e.classList.remove('flash'))`))
	png := step(s, "screenshot", 20*time.Second, chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
}

// contrastJS lists visible text whose colour has less than 4.5:1 contrast
// (WCAG AA) with the first opaque background behind it.
const contrastJS = `(() => {
	const parts = c => c.match(/[\d.]+/g).map(Number);
	const lum = c => {
		const [r, g, b] = parts(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const opaque = c => { const p = parts(c); return p.length < 4 || p[3] > 0.5; };
	const background = e => {
		for (; e; e = e.parentElement) {
			const c = getComputedStyle(e).backgroundColor;
			if (opaque(c)) return c;
		}
		return "rgb(255, 255, 255)";
	};
	const low = [];
	for (const e of document.querySelectorAll("body *")) {
		if (!e.getClientRects().length) continue;
		if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
		const a = lum(getComputedStyle(e).color), b = lum(background(e));
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		if (ratio < 4.5) low.push(e.tagName + " " + JSON.stringify(e.textContent.trim().slice(0, 24)) + " " + ratio.toFixed(2));
	}
	return low;
})()`
