package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
	for i, st := range steps {
		if strings.Contains(st.cmd, "gpux watch") {
			st.cmd = strings.Replace(st.cmd, "gpux watch", "timeout 2 gpux watch", 1) + " || true"
		}
		script.WriteString("echo '@@" + strconv.Itoa(i) + "'\n" + st.cmd + " 2>&1\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = []string{"PATH=" + filepath.Dir(gpuxBin) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
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
		if g, w := normalise(got[i]), normalise(st.want); !sameOutput(g, w) {
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

// sameOutput compares outputs word by word, so column widths may differ,
// and lets amounts differ by up to 0.05: a running spot bid's cost and a
// listing's spot earnings grow by the millisecond while the walkthrough
// runs (slowly, on a busy machine).
func sameOutput(got, want string) bool {
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
			if err1 != nil || err2 != nil || g.Sub(w).Abs().GreaterThan(decimal.RequireFromString("0.05")) {
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
