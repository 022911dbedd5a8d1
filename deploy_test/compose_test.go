// Package deploy_test checks the deployment files at the repository root
// (Dockerfile, docker-compose.yml, docs/DURABILITY.md) without Docker.
package deploy_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// root is the repository root, relative to this package's directory.
const root = ".."

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       any          `yaml:"build"`
	Command     any          `yaml:"command"`     // string or list
	Environment any          `yaml:"environment"` // map or list of KEY=VALUE
	Volumes     []any        `yaml:"volumes"`     // short strings or long-form maps
	DependsOn   any          `yaml:"depends_on"`  // list or map of {condition}
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Profiles    []string     `yaml:"profiles"`
	Ports       []any        `yaml:"ports"` // "HOST:CONTAINER" strings or long-form maps
}

type healthcheck struct {
	Test    any  `yaml:"test"` // string or list
	Disable bool `yaml:"disable"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, "docker-compose.yml")), &c); err != nil {
		t.Fatalf("parse docker-compose.yml: %v", err)
	}
	return c
}

func mustService(t *testing.T, c composeFile, name string) service {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

// words returns a string-or-list field as a list of words.
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, w := range v {
			out = append(out, fmt.Sprint(w))
		}
		return out
	}
	return nil
}

// hasArgs reports whether want appears in args as consecutive words.
func hasArgs(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func env(s service) map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			out[k] = fmt.Sprint(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = v
		}
	}
	return out
}

func TestComposeRedisDurable(t *testing.T) {
	c := loadCompose(t)
	r := mustService(t, c, "redis")
	if !strings.HasPrefix(r.Image, "redis:7") {
		t.Errorf("redis image = %q, want redis:7", r.Image)
	}
	args := words(r.Command)
	if !hasArgs(args, "--appendonly", "yes") {
		t.Errorf("redis command %q lacks --appendonly yes", args)
	}
	if !hasArgs(args, "--appendfsync", "always") {
		t.Errorf("redis command %q lacks --appendfsync always", args)
	}

	var data string
	for _, v := range r.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == "/data" {
				data = parts[0]
			}
		case map[string]any:
			if v["target"] == "/data" {
				data = fmt.Sprint(v["source"])
			}
		}
	}
	switch {
	case data == "":
		t.Errorf("redis: no volume mounted at /data (%v)", r.Volumes)
	case !strings.HasPrefix(data, ".") && !strings.HasPrefix(data, "/"):
		if _, ok := c.Volumes[data]; !ok {
			t.Errorf("redis: named volume %q is not declared under top-level volumes", data)
		}
	}
}

func TestComposeGpuxd(t *testing.T) {
	c := loadCompose(t)
	g := mustService(t, c, "gpuxd")
	if g.Build == nil {
		t.Error("gpuxd: no build")
	}
	e := env(g)
	u, err := url.Parse(e["GPUX_REDIS_URL"])
	if err != nil || u.Scheme != "redis" || u.Hostname() != "redis" || u.Port() != "6379" {
		t.Errorf("gpuxd GPUX_REDIS_URL = %q, want redis://redis:6379/<db>", e["GPUX_REDIS_URL"])
	}
	if u != nil {
		if _, ok := c.Services[u.Hostname()]; !ok {
			t.Errorf("GPUX_REDIS_URL host %q is not a compose service", u.Hostname())
		}
	}
	if e["GPUX_ADDR"] != ":8080" {
		t.Errorf("gpuxd GPUX_ADDR = %q, want :8080", e["GPUX_ADDR"])
	}
	if !strings.Contains(e["GPUX_ADMIN_KEY"], ":?") {
		t.Errorf("gpuxd GPUX_ADMIN_KEY = %q, want a required variable (${GPUX_ADMIN_KEY:?...})", e["GPUX_ADMIN_KEY"])
	}

	var cond string
	switch d := g.DependsOn.(type) {
	case map[string]any:
		if r, ok := d["redis"].(map[string]any); ok {
			cond = fmt.Sprint(r["condition"])
		}
	case []any:
		cond = "service_started" // short form: started only
	}
	if cond != "service_healthy" {
		t.Errorf("gpuxd depends_on redis condition = %q, want service_healthy", cond)
	}
}

func TestComposeHealthchecks(t *testing.T) {
	c := loadCompose(t)
	want := map[string]string{"redis": "redis-cli", "gpuxd": "/readyz", "gpuxd-demo": "/readyz"}
	for name, hint := range want {
		s := mustService(t, c, name)
		if s.Healthcheck == nil || s.Healthcheck.Disable {
			t.Errorf("%s: no healthcheck", name)
			continue
		}
		test := words(s.Healthcheck.Test)
		if len(test) < 2 || test[0] == "NONE" {
			t.Errorf("%s: healthcheck test %q is empty", name, test)
			continue
		}
		if !strings.Contains(strings.Join(test, " "), hint) {
			t.Errorf("%s: healthcheck test %q does not use %s", name, test, hint)
		}
	}
}

type instruction struct{ cmd, args string }

// dockerfileStages parses the Dockerfile into instructions grouped by stage
// (split at each FROM), joining continuation lines and dropping comments.
func dockerfileStages(t *testing.T) [][]instruction {
	t.Helper()
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			return
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := dockerfileStages(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	build := stages[0]
	if !strings.HasPrefix(build[0].args, "golang:1.26") {
		t.Errorf("build stage FROM %q, want golang:1.26", build[0].args)
	}
	built := false
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			if !strings.Contains(in.args, "CGO_ENABLED=0") {
				t.Errorf("go build without CGO_ENABLED=0: %q", in.args)
			}
			if !strings.Contains(in.args, "./cmd/gpuxd") {
				t.Errorf("go build does not build ./cmd/gpuxd: %q", in.args)
			}
		}
	}
	if !built {
		t.Error("build stage has no RUN go build")
	}

	final := stages[len(stages)-1]
	if img := final[0].args; !strings.HasPrefix(img, "gcr.io/distroless/static") && img != "scratch" {
		t.Errorf("final stage FROM %q, want distroless static or scratch", img)
	}
	var user, entry string
	exposed, copied := false, false
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "EXPOSE":
			exposed = exposed || slices.Contains(strings.Fields(in.args), "8080")
		case "COPY":
			copied = copied || (strings.Contains(in.args, "--from=") && strings.Contains(in.args, "gpuxd"))
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	switch {
	case user == "":
		t.Error("final stage has no USER")
	case uid == "root" || uid == "0" || !regexp.MustCompile(`^[0-9]+$`).MatchString(uid):
		t.Errorf("final stage USER %q, want a numeric non-root uid", user)
	}
	if !exposed {
		t.Error("final stage does not EXPOSE 8080")
	}
	if !copied {
		t.Error("final stage does not COPY gpuxd from the build stage")
	}
	if !strings.Contains(entry, "gpuxd") {
		t.Errorf("ENTRYPOINT %q does not run gpuxd", entry)
	}
}

func TestDockerignoreKeepsSources(t *testing.T) {
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		p := strings.Trim(strings.TrimSpace(line), "/")
		if slices.Contains([]string{"go.mod", "go.sum", "cmd", "*.go", "**/*.go"}, p) {
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
}

func TestDurabilityDoc(t *testing.T) {
	doc := readFile(t, "docs/DURABILITY.md")
	for _, s := range []string{"appendfsync always", "everysec", "gpux:{<shard>}:journal", "gpux:{<shard>}:snapshot", `"durable": false`} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/DURABILITY.md does not mention %q", s)
		}
	}
}

// hostPorts returns a service's published ports as host → container.
func hostPorts(t *testing.T, s service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			parts := strings.Split(p, ":")
			if len(parts) < 2 {
				t.Errorf("port %q publishes no host port", p)
				continue
			}
			out[parts[len(parts)-2]] = parts[len(parts)-1]
		case map[string]any:
			out[fmt.Sprint(p["published"])] = fmt.Sprint(p["target"])
		}
	}
	return out
}

// TestComposeDemoProfile: `docker compose --profile demo up` adds a gpuxd
// running --demo on an in-memory journal, on a host port of its own, built
// from the same image; a plain `docker compose up` does not start it.
func TestComposeDemoProfile(t *testing.T) {
	c := loadCompose(t)
	d := mustService(t, c, "gpuxd-demo")
	if !slices.Contains(d.Profiles, "demo") {
		t.Errorf("gpuxd-demo profiles = %v, want demo (so plain `up` leaves it out)", d.Profiles)
	}
	if d.Build == nil {
		t.Error("gpuxd-demo: no build (it must run the same gpuxd image)")
	}
	e := env(d)
	if e["GPUX_DEMO"] != "true" {
		t.Errorf("gpuxd-demo GPUX_DEMO = %q, want true", e["GPUX_DEMO"])
	}
	if v, ok := e["GPUX_REDIS_URL"]; !ok || v != "" {
		t.Errorf("gpuxd-demo GPUX_REDIS_URL = %q (set %v), want set and empty: demo state must not enter the durable journal", v, ok)
	}
	if e["GPUX_ADDR"] != ":8080" {
		t.Errorf("gpuxd-demo GPUX_ADDR = %q, want :8080", e["GPUX_ADDR"])
	}
	if !strings.Contains(e["GPUX_ADMIN_KEY"], ":?") {
		t.Errorf("gpuxd-demo GPUX_ADMIN_KEY = %q, want a required variable", e["GPUX_ADMIN_KEY"])
	}
	demoPorts, mainPorts := hostPorts(t, d), hostPorts(t, mustService(t, c, "gpuxd"))
	if demoPorts["8081"] != "8080" {
		t.Errorf("gpuxd-demo ports = %v, want 8081:8080", demoPorts)
	}
	for host := range demoPorts {
		if _, clash := mainPorts[host]; clash {
			t.Errorf("gpuxd-demo publishes host port %s, which gpuxd uses too", host)
		}
	}
	for name, s := range c.Services {
		if len(s.Profiles) == 0 && strings.Contains(fmt.Sprint(s.DependsOn), "gpuxd-demo") {
			t.Errorf("service %s (no profile) depends on gpuxd-demo", name)
		}
	}
	if readme := readFile(t, "README.md"); !strings.Contains(readme, "docker compose --profile demo up") {
		t.Error("README.md does not show `docker compose --profile demo up`")
	}
}
