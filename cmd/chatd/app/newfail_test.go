package app

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"chatd/hub"
	"chatd/llm/openai"
	"chatd/persistence/sqlite"
	"chatd/transport"
	"chatd/transport/auth"
)

// TestNewFailureLeavesNothingRunning: a New that fails after it started
// the batching writer ends it before returning, whichever step failed.
func TestNewFailureLeavesNothingRunning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	cases := []struct {
		name  string
		tweak func(*Config)
	}{
		{"writer gauges refused", func(c *Config) { c.Metrics.Registerer = refusing("chatd_writer_messages") }},
		{"bus gauges refused", func(c *Config) {
			c.Bus = closableBus{hub.NewLocalBus()}
			c.Metrics.Registerer = refusing("chatd_bus_up")
		}},
		{"trusted proxy not an address", func(c *Config) { c.TrustedProxies = []string{"bogus"} }},
		{"accounts refused", func(c *Config) { c.Accounts.BcryptCost = bcrypt.MaxCost + 1 }},
		{"router metrics refused", func(c *Config) { c.Metrics.Registerer = refusing("chatd_http_requests_total") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Logger:   testLogger(t),
				Store:    store,
				Model:    openai.New(openai.Options{APIKey: "test-key", BaseURL: "http://127.0.0.1:1"}),
				Auth:     auth.Options{Secret: []byte(strings.Repeat("s", 32))},
				Accounts: auth.AccountOptions{BcryptCost: bcrypt.MinCost},
				Metrics:  transport.MetricsOptions{Registerer: prometheus.NewRegistry()},
			}
			tc.tweak(&cfg)
			before := writerRuns(t)
			a, err := New(cfg)
			if err == nil {
				_ = a.Shutdown(ctx)
				t.Fatal("New succeeded; the case should make it fail")
			}
			if after := writerRuns(t); after > before {
				t.Fatalf("New failed (%v) and left %d batching writer goroutines running (%d before)", err, after, before)
			}
		})
	}
}

// writerRuns counts the batching writers' goroutines waiting for work now.
// One whose Close returned may not have exited yet (it closes its done
// channel on the way out) but no longer waits in its loop's select.
func writerRuns(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for g := range strings.SplitSeq(buf.String(), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "persistence/batch.(*Writer).run(") {
			n++
		}
	}
	return n
}

// refusing is a registry that refuses to register the collector named name.
func refusing(name string) prometheus.Registerer {
	return refusingRegistry{Registerer: prometheus.NewRegistry(), name: name}
}

type refusingRegistry struct {
	prometheus.Registerer
	name string
}

func (r refusingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	refused := false
	for d := range ch {
		refused = refused || strings.Contains(d.String(), `"`+r.name+`"`)
	}
	if refused {
		return errors.New("refused: " + r.name)
	}
	return r.Registerer.Register(c)
}

// closableBus is a local bus with the Close the app's Bus has.
type closableBus struct{ *hub.MemBus }

func (closableBus) Close(context.Context) error { return nil }
