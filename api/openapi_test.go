package api_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gpux/gpux/api"
)

// TestRoutesMatchOpenAPI: every route the server registers is described in
// openapi.yaml with its method, and every operation there is served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	srv := api.NewServer(api.Config{Sequencer: nil})
	defer srv.Shutdown(bg)
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" {
			continue
		}
		// Group middleware registers the prefix itself; skip prefixes with no handler of their own.
		if r.Path == "/v1" || r.Path == "/" {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("%s is served but not in openapi.yaml", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("%s is in openapi.yaml but not served", k)
		}
	}
	if len(served) < 20 {
		keys := make([]string, 0, len(served))
		for k := range served {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Errorf("only %d routes: %v", len(served), keys)
	}
}
