package client_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestExampleModuleBuilds vets and builds examples/pricewatch, a separate
// module that imports client/ the way an outside program does (through
// the module path, with a replace pointing here), so an API change that
// breaks outside callers fails here.
func TestExampleModuleBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	for _, args := range [][]string{{"vet", "./..."}, {"build", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = "../examples/pricewatch"
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %v in examples/pricewatch: %v\n%s", args, err, out)
		}
	}
}
