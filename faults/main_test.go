package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// gpuxdBin is the gpuxd binary TestMain builds once for every test.
var gpuxdBin string

// long reports whether the long form runs (GPUX_FAULTS_LONG=1).
func long() bool { return os.Getenv("GPUX_FAULTS_LONG") == "1" }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gpux-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gpuxdBin = filepath.Join(dir, "gpuxd")
	build := exec.Command("go", "build", "-o", gpuxdBin, "github.com/gpux/gpux/cmd/gpuxd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: build gpuxd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
