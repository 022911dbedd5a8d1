package web_test

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/gpux/gpux/web"
)

// TestFiles checks the embedded tree: every file the page loads is there,
// nothing is loaded from another host (no CDN), and the vendored chart
// library keeps its licence.
func TestFiles(t *testing.T) {
	fsys := web.FS()
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 4 {
		t.Fatalf("index.html references %d files, want the script, styles and uPlot", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "data:"), ref == "/openapi.yaml":
		case strings.Contains(ref, "//"):
			t.Errorf("index.html loads %q from another host; everything must be embedded", ref)
		default:
			if _, err := fs.Stat(fsys, ref); err != nil {
				t.Errorf("index.html references %q: %v", ref, err)
			}
		}
	}
	for _, name := range []string{"app.js", "app.css"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`https?://`).Match(b) {
			t.Errorf("%s mentions an http(s) URL; the page talks to its own origin only", name)
		}
	}
	lic, err := fs.ReadFile(fsys, "vendor/uplot/LICENSE")
	if err != nil || !strings.Contains(string(lic), "MIT License") {
		t.Errorf("vendor/uplot/LICENSE: %v, want the MIT licence", err)
	}
}
