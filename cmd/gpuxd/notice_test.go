package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gpux/gpux/engine"
)

func TestPreemptionNoticeFlags(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	notices := func(tb testing.TB, c Config) map[string]int64 {
		tb.Helper()
		out := map[string]int64{}
		for _, mk := range c.Markets() {
			out[mk.ID] = mk.NoticeSeconds()
		}
		return out
	}
	t.Run("default is the engine's", func(t *testing.T) {
		m := NewMain()
		if err := m.parse([]string{"--gpus", "l4", "--regions", "us-east"}, noEnv); err != nil {
			t.Fatal(err)
		}
		if got := notices(t, m.Config); got["l4.us-east"] != engine.DefaultPreemptionNotice {
			t.Errorf("notices: got %v, want %d", got, engine.DefaultPreemptionNotice)
		}
		// The default exchange is configured exactly as the engine's own
		// catalogue, so its state hash is the one any replay tool gets.
		if got, want := m.Config.Markets(), engine.Catalogue([]string{"l4"}, []string{"us-east"}); !reflect.DeepEqual(got, want) {
			t.Errorf("markets: got %+v, want the engine's catalogue %+v", got, want)
		}
	})
	t.Run("global and per market", func(t *testing.T) {
		m := NewMain()
		err := m.parse([]string{"--gpus", "l4,h200", "--regions", "us-east", "--preemption-notice", "30s",
			"--preemption-notice-markets", "h200.us-east=5m"}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got := notices(t, m.Config); got["l4.us-east"] != 30 || got["h200.us-east"] != 300 {
			t.Errorf("notices: got %v, want l4 30 and h200 300", got)
		}
	})
	t.Run("zero means none", func(t *testing.T) {
		m := NewMain()
		if err := m.parse([]string{"--gpus", "l4", "--regions", "us-east", "--preemption-notice", "0s"}, noEnv); err != nil {
			t.Fatal(err)
		}
		if got := notices(t, m.Config); got["l4.us-east"] != 0 {
			t.Errorf("notices: got %v, want 0 (none)", got)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"over an hour", []string{"--preemption-notice", "61m"}, "--preemption-notice"},
		{"negative", []string{"--preemption-notice", "-1s"}, "--preemption-notice"},
		{"fraction of a second", []string{"--preemption-notice", "1500ms"}, "--preemption-notice"},
		{"unknown market", []string{"--preemption-notice-markets", "gb300.mars=1m"}, "gb300.mars"},
		{"no duration", []string{"--preemption-notice-markets", "l4.us-east"}, "MARKET=DURATION"},
		{"bad duration", []string{"--preemption-notice-markets", "l4.us-east=soon"}, "l4.us-east=soon"},
		{"market over an hour", []string{"--preemption-notice-markets", "l4.us-east=2h"}, "l4.us-east"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			m := NewMain()
			err := m.parse(tc.args, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse %v: got %v, want an error naming %q", tc.args, err, tc.want)
			}
		})
	}
}
