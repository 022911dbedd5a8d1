package faults

import (
	"os"
	"testing"

	"github.com/gpux/gpux/internal/gpuxdtest"
)

// long reports whether the long form runs (GPUX_FAULTS_LONG=1).
func long() bool { return os.Getenv("GPUX_FAULTS_LONG") == "1" }

func TestMain(m *testing.M) {
	code := m.Run()
	gpuxdtest.Cleanup()
	os.Exit(code)
}
