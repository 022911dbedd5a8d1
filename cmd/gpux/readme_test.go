package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestREADMEWalkthrough runs the README's command-line walkthrough with
// the real binaries, command by command in one bash session, and compares
// each output with the one the README shows, ids and times aside. The
// prices table (the demo moves it) and `watch` (it runs until stopped)
// are run for their exit status only.
func TestREADMEWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("SKIP: no bash")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := walkthrough(t, string(b))
	if len(steps) < 10 {
		t.Fatalf("found %d commands in the README walkthrough, want the whole walkthrough", len(steps))
	}
	s := startServer(t, "--demo")
	gpuxBin, _ := binaries(t)

	var script strings.Builder
	script.WriteString("set -u\nADMIN_KEY=" + adminKey + "\nM=h100-sxm.us-west\nexport GPUX_URL=" + s.URL + "\n")
	// "--start +12h" is read at each command's run, so two commands on
	// either side of an hour change would name different windows, and the
	// second of the pair sharing --idempotency-key job-42 would be refused
	// as a different request. One absolute hour for the whole run keeps
	// the walkthrough's windows its own; relative times have their own
	// tests.
	start := time.Now().UTC().Truncate(time.Hour).Add(12 * time.Hour).Format(time.RFC3339)
	for i, st := range steps {
		st.cmd = strings.ReplaceAll(st.cmd, "--start +12h", "--start "+start)
		if strings.Contains(st.cmd, "gpux watch") {
			st.cmd = strings.Replace(st.cmd, "gpux watch", "timeout 2 gpux watch", 1) + " || true"
		}
		script.WriteString("echo '@@" + strconv.Itoa(i) + "'\n" + st.cmd + " 2>&1\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = []string{"PATH=" + filepath.Dir(gpuxBin) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	began := time.Now()
	out, err := cmd.CombinedOutput()
	growth := spotGrowth(time.Since(began))
	if err != nil {
		t.Fatalf("walkthrough: %v\n%s", err, out)
	}
	got := map[int]string{}
	parts := regexp.MustCompile(`(?m)^@@(\d+)\n`).Split(string(out), -1)
	idx := regexp.MustCompile(`(?m)^@@(\d+)\n`).FindAllStringSubmatch(string(out), -1)
	for i, m := range idx {
		n, _ := strconv.Atoi(m[1])
		got[n] = parts[i+1]
	}
	for i, st := range steps {
		if strings.Contains(st.cmd, "gpux prices") || strings.Contains(st.cmd, "gpux watch") {
			continue
		}
		if g, w := normalise(got[i]), normalise(st.want); !sameOutput(g, w, growth) {
			t.Errorf("README step %q:\n got:\n%s\nwant:\n%s", st.cmd, g, w)
		}
	}
}

type step struct{ cmd, want string }

// walkthrough returns the "$ " commands of the console blocks of the
// README's walkthrough section, each with the output shown under it.
func walkthrough(t *testing.T, readme string) []step {
	t.Helper()
	start := strings.Index(readme, "## A walkthrough")
	if start < 0 {
		t.Fatal("README has no walkthrough section")
	}
	sec := readme[start+3:]
	if end := strings.Index(sec, "\n## "); end >= 0 {
		sec = sec[:end]
	}
	var steps []step
	in := false
	for _, line := range strings.Split(sec, "\n") {
		switch {
		case line == "```console":
			in = true
		case line == "```":
			in = false
		case in && strings.HasPrefix(line, "$ "):
			steps = append(steps, step{cmd: line[2:]})
		case in && len(steps) > 0:
			steps[len(steps)-1].want += line + "\n"
		}
	}
	return steps
}

var (
	uuidRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	whenRE  = regexp.MustCompile(`(\d{4}-)?\d\d-\d\d \d\d:\d\d`)
	clockRE = regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3}`)
)

// The walkthrough's one spot bid runs 2 GPUs at the 1.40 floor, so no
// amount can grow by more than 2.80 an hour while the walkthrough runs.
var spotRate = decimal.RequireFromString("2.80")

// spotGrowth bounds how much a running spot bid's cost (and the listing's
// spot earnings) can have grown during d, plus one cent for rounding. d is
// the whole walkthrough's duration, which encloses the bid's run however
// slow the machine; the bound is not an assertion about speed.
func spotGrowth(d time.Duration) decimal.Decimal {
	hours := decimal.NewFromInt(int64(d)).Div(decimal.NewFromInt(int64(time.Hour)))
	return spotRate.Mul(hours).RoundUp(2).Add(decimal.RequireFromString("0.01"))
}

// sameOutput compares outputs word by word, so column widths may differ.
// Words must be equal, except that an amount may exceed the README's by
// at most growth: a running spot bid's cost and a listing's spot earnings
// grow by the millisecond while the walkthrough runs. Every other amount
// is the walkthrough's own and has to match exactly.
func sameOutput(got, want string, growth decimal.Decimal) bool {
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(gl) != len(wl) {
		return false
	}
	for i := range gl {
		gw, ww := strings.Fields(gl[i]), strings.Fields(wl[i])
		if len(gw) != len(ww) {
			return false
		}
		for j := range gw {
			if gw[j] == ww[j] {
				continue
			}
			g, err1 := decimal.NewFromString(gw[j])
			w, err2 := decimal.NewFromString(ww[j])
			if err1 != nil || err2 != nil || g.LessThan(w) || g.Sub(w).GreaterThan(growth) {
				return false
			}
		}
	}
	return true
}

// normalise replaces ids and times, which differ on every run.
func normalise(s string) string {
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = clockRE.ReplaceAllString(s, "<clock>")
	s = whenRE.ReplaceAllString(s, "<time>")
	return strings.TrimRight(s, "\n")
}

func TestSameOutput(t *testing.T) {
	cent := decimal.RequireFromString("0.01")
	tests := []struct {
		name, got, want string
		same            bool
	}{
		{"equal, other widths", "cost:  1.00", "cost: 1.00", true},
		{"grown within bound", "a 0.01", "a 0.00", true},
		{"grown beyond bound", "a 0.02", "a 0.00", false},
		{"shrunk", "a 4899.19", "a 4899.20", false},
		{"word differs", "status: waiting", "status: running", false},
		{"extra line", "a\nb", "a", false},
		{"extra word", "a b", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameOutput(tt.got, tt.want, cent); got != tt.same {
				t.Errorf("sameOutput(%q, %q): got %v, want %v", tt.got, tt.want, got, tt.same)
			}
		})
	}
}

func TestSpotGrowth(t *testing.T) {
	if got, want := spotGrowth(time.Hour), decimal.RequireFromString("2.81"); !got.Equal(want) {
		t.Errorf("spotGrowth(1h): got %s, want %s", got, want)
	}
	if got, want := spotGrowth(time.Second), decimal.RequireFromString("0.02"); !got.Equal(want) {
		t.Errorf("spotGrowth(1s): got %s, want %s", got, want)
	}
}
