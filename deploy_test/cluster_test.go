package deploy_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// clusterService is a service of docker-compose.cluster.yml with the
// fields this file checks besides service's.
type clusterService struct {
	service    `yaml:",inline"`
	Entrypoint any `yaml:"entrypoint"`
}

func loadClusterCompose(t *testing.T) map[string]clusterService {
	t.Helper()
	var c struct {
		Services map[string]clusterService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "docker-compose.cluster.yml")), &c); err != nil {
		t.Fatalf("parse docker-compose.cluster.yml: %v", err)
	}
	return c.Services
}

// gpuxdEnvNames returns every GPUX_* name cmd/gpuxd reads, so the compose
// file cannot set a variable gpuxd ignores.
func gpuxdEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "cmd", "gpuxd", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("list cmd/gpuxd: %v", err)
	}
	names := map[string]bool{}
	re := regexp.MustCompile(`"(GPUX_[A-Z0-9_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
	}
	return names
}

// TestComposeCluster checks the topology docker-compose.cluster.yml
// promises (docs/CLUSTER.md): six Redis Cluster nodes with a durable AOF,
// a one-shot cluster creation, two shards of two engine nodes each, two API
// nodes, and a load balancer over exactly those API nodes, with every
// gpuxd variable one gpuxd reads.
func TestComposeCluster(t *testing.T) {
	svcs := loadClusterCompose(t)
	known := gpuxdEnvNames(t)

	var redis, engines, apis []string
	shards := map[string][]string{}
	for name, s := range svcs {
		e := env(s.service)
		switch {
		case strings.HasPrefix(name, "redis-") && name != "redis-cluster-init":
			redis = append(redis, name)
			args := words(s.Command)
			for _, want := range [][]string{{"--cluster-enabled", "yes"}, {"--appendonly", "yes"}, {"--appendfsync", "always"}} {
				if !hasArgs(args, want...) {
					t.Errorf("%s: command %q lacks %q", name, args, want)
				}
			}
		case e["GPUX_ROLE"] == "engine":
			engines = append(engines, name)
			shards[e["GPUX_SHARD"]] = append(shards[e["GPUX_SHARD"]], name)
			if want := name + ":8080"; e["GPUX_ADVERTISE_ADDR"] != want {
				t.Errorf("%s: GPUX_ADVERTISE_ADDR = %q, want %q (other nodes reach it by service name)", name, e["GPUX_ADVERTISE_ADDR"], want)
			}
		case e["GPUX_ROLE"] == "api":
			apis = append(apis, name)
		}
		if !strings.HasPrefix(name, "redis") && name != "lb" {
			if s.Build == nil {
				t.Errorf("%s: no build", name)
			}
			for k := range e {
				if !known[k] {
					t.Errorf("%s: sets %s, which gpuxd does not read", name, k)
				}
			}
			u, err := url.Parse(e["GPUX_REDIS_URL"])
			if err != nil || u.Scheme != "redis+cluster" {
				t.Errorf("%s: GPUX_REDIS_URL = %q, want redis+cluster://...", name, e["GPUX_REDIS_URL"])
			} else {
				for _, h := range strings.Split(u.Host, ",") {
					if host, _, _ := strings.Cut(h, ":"); svcs[host].Image == "" {
						t.Errorf("%s: GPUX_REDIS_URL names %q, not a Redis service", name, host)
					}
				}
			}
			if !strings.Contains(e["GPUX_ADMIN_KEY"], ":?") {
				t.Errorf("%s: GPUX_ADMIN_KEY = %q, want a required variable", name, e["GPUX_ADMIN_KEY"])
			}
		}
	}
	if len(redis) != 6 {
		t.Errorf("redis nodes = %v, want six (three masters, three replicas)", redis)
	}
	init, ok := svcs["redis-cluster-init"]
	if !ok {
		t.Fatal("no redis-cluster-init service")
	}
	if cmd := strings.Join(append(words(init.Entrypoint), words(init.Command)...), " "); !strings.Contains(cmd, "--cluster create") || !strings.Contains(cmd, "--cluster-replicas 1") {
		t.Errorf("redis-cluster-init does not create the cluster with one replica per master: %q", cmd)
	}
	if len(shards) != 2 {
		t.Errorf("shards = %v, want two", shards)
	}
	var names []string
	for shard, nodes := range shards {
		names = append(names, shard)
		if len(nodes) != 2 {
			t.Errorf("shard %s runs on %v, want an owner and a standby", shard, nodes)
		}
	}
	sort.Strings(names)
	for _, n := range engines {
		regions := strings.Split(env(svcs[n].service)["GPUX_REGIONS"], ",")
		sort.Strings(regions)
		if !slices.Equal(regions, names) {
			t.Errorf("%s: GPUX_REGIONS = %v, want the shards' regions %v so every market has an owner", n, regions, names)
		}
	}
	if len(apis) != 2 {
		t.Errorf("api nodes = %v, want two", apis)
	}

	lb, ok := svcs["lb"]
	if !ok {
		t.Fatal("no lb service")
	}
	var conf string
	for _, v := range lb.Volumes {
		if s, ok := v.(string); ok && strings.Contains(s, "nginx") {
			conf = strings.TrimPrefix(strings.Split(s, ":")[0], "./")
		}
	}
	if conf == "" {
		t.Fatalf("lb mounts no nginx configuration: %v", lb.Volumes)
	}
	text := readFile(t, conf)
	for _, a := range apis {
		if !strings.Contains(text, "server "+a+":8080") {
			t.Errorf("%s does not balance over %s", conf, a)
		}
	}
	for _, s := range engines {
		if strings.Contains(text, "server "+s+":") {
			t.Errorf("%s sends clients to engine node %s; clients go through the API nodes", conf, s)
		}
	}
	if !strings.Contains(text, "Upgrade") {
		t.Errorf("%s does not pass websocket upgrades", conf)
	}
}
