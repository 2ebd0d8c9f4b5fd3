package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"chatd/hub"
	"chatd/hub/natsbus"
	"chatd/hub/natsbus/natstest"
	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/llm/openai"
	"chatd/persistence/counting"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/transport/auth"
)

// clusterLease is the lease TTL of the test instances: short, so a crash
// is detected within the test's patience, yet well past a stall of a
// loaded machine under -race (a goroutine descheduled for a second or
// two), which at 2 s could let a live instance's lease lapse, and bound
// its renewal and its broadcasts (LeaseTTL/2) to 1 s.
const clusterLease = 5 * time.Second

// cluster is several chatd instances (each an App with its own httptest
// server, MongoDB client and NATS connection) sharing one MongoDB store on
// an in-process FerretDB, one fake upstream and an embedded three-node
// NATS JetStream cluster: a multi-instance deployment in one process.
type cluster struct {
	nats    *natstest.Cluster
	fake    *fakeai.TestServer
	nodes   []*env
	buses   []*natsbus.Bus
	crashed []bool // instances killed by crash: their shutdown errors are expected

	uri        string               // the shared MongoDB store
	tweak      func(*Config)        // applied to every instance
	stream     natsbus.StreamLimits // of the answer stream, set when NATS is provisioned
	mu         sync.Mutex           // guards nodes[i].srv across restarts
	generation []int                // restarts of each instance (names its new instance id)
}

type clusterOptions struct {
	instances int           // defaults to 3
	tweak     func(*Config) // tweak every instance
	// stream bounds the answer stream; MaxBytes defaults to 64 MiB, the
	// rest to natsbus's defaults.
	stream natsbus.StreamLimits
}

func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	if o.instances == 0 {
		o.instances = 3
	}
	if o.stream.MaxBytes == 0 {
		o.stream.MaxBytes = 64 << 20
	}
	c := &cluster{nats: natstest.Start(t, natstest.Options{}), fake: fakeai.Start(t, fakeai.Options{}),
		uri: ferret.Start(t), tweak: o.tweak, stream: o.stream}
	c.provision(t)
	for i := range o.instances {
		c.nodes = append(c.nodes, nil)
		c.buses = append(c.buses, nil)
		c.crashed = append(c.crashed, false)
		c.generation = append(c.generation, 0)
		c.start(t, i, c.uri, o.tweak)
	}
	for _, b := range c.buses {
		c.waitHealthy(t, b)
	}
	return c
}

// waitHealthy waits until b is usable.
func (c *cluster) waitHealthy(t *testing.T, b *natsbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for b.Health(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("bus %s not healthy: %v", b.InstanceID(), b.Health(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// provision sets the buckets and the stream up once, before the instances
// start (as the first instance of a deployment does).
func (c *cluster) provision(t *testing.T) {
	t.Helper()
	b, err := natsbus.New(natsbus.Options{URLs: c.nats.URLs(), InstanceID: "setup", Logger: testLogger(t),
		Stream: c.stream})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for b.Health(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("NATS never set up: %v", b.Health(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// start runs instance i.
func (c *cluster) start(t *testing.T, i int, uri string, tweak func(*Config)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := mongo.Open(ctx, mongo.Options{URI: uri, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open mongo store: %v", err)
	}
	c.mu.Lock()
	id := fmt.Sprintf("inst-%c%d", 'a'+i, c.generation[i])
	c.mu.Unlock()
	// The outage grace leaves a loaded machine room to reconnect to another
	// NATS node (a node's loss must change nothing a tab sees; 500 ms, then
	// 1.5 s, were overrun under -race on a loaded machine): the production
	// default.
	bus, err := natsbus.New(natsbus.Options{URLs: c.nats.URLs(), InstanceID: id,
		LeaseTTL: clusterLease, OutageGrace: natsbus.DefaultOutageGrace, Logger: testLogger(t),
		Stream: c.stream})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, fake: c.fake, store: counting.Wrap(s)}
	// Upstream timeouts no stall reaches, and past a crash's take-over
	// (4 lease TTLs at most): the crashed instance's hanging answer must not
	// end by its own timeout first.
	mo := openai.Options{APIKey: "test-key", BaseURL: c.fake.URL, RetryBase: 20 * time.Millisecond,
		RetryMax: 100 * time.Millisecond, FirstTokenTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	cfg := Config{
		Logger: testLogger(t),
		Store:  e.store,
		Model:  openai.New(mo),
		Titler: func(_ context.Context, _ llm.ModelInfo, prompt, _ string) string {
			return "Title: " + firstWords(prompt)
		},
		Auth:         auth.Options{Secret: []byte(strings.Repeat("s", 32))},
		Accounts:     auth.AccountOptions{BcryptCost: bcrypt.MinCost, Shared: bus.Windows()},
		Hub:          hub.Options{CoalesceInterval: 40 * time.Millisecond}, // fewer bus messages on a loaded test machine
		Bus:          bus,
		SharedLimits: bus.Limits(),
	}
	cfg.Writer.Interval = 50 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	e.app = a
	e.srv = httptest.NewServer(a.Handler())
	t.Cleanup(func() { c.stopEnv(t, e, i) })
	c.mu.Lock()
	c.nodes[i], c.buses[i] = e, bus
	c.mu.Unlock()
}

// crash kills instance i as kill -9 would, as far as the cluster can tell:
// its NATS connection and lease renewal stop at once and nothing of its
// shutdown path runs. (Its process goes on: the test gives it an upstream
// that hangs, so it produces nothing more.)
func (c *cluster) crash(i int) {
	c.crashed[i] = true
	c.buses[i].Kill()
}

// stopEnv shuts instance i (e) down as the binary does, then its store;
// an instance already shut down (restart) only has its store closed.
func (c *cluster) stopEnv(t *testing.T, e *env, i int) {
	timeout := testTimeout
	if c.crashed[i] {
		timeout = 2 * time.Second // nothing left to drain: it is dead for the cluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil && !c.crashed[i] {
		t.Errorf("shutdown of instance %d: %v", i, err)
	}
	e.srv.Close()
	if err := e.store.Close(context.Background()); err != nil {
		t.Errorf("close store of instance %d: %v", i, err)
	}
}

// lockFree waits until no answer holds the conversation's cluster lock.
func (c *cluster) lockFree(t *testing.T, convID string) {
	t.Helper()
	waitFor(t, "the conversation's lock to be released", func() bool {
		_, held, err := c.buses[0].Running(context.Background(), convID)
		return err == nil && !held
	})
}

// readyz returns /readyz's status and body on instance i.
func (c *cluster) readyz(t *testing.T, i int) (int, string) {
	t.Helper()
	res, err := http.Get(c.nodes[i].srv.URL + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := res.Body.Read(buf)
	b.Write(buf[:n])
	return res.StatusCode, b.String()
}

// waitReady polls instance i's /readyz until it answers want.
func (c *cluster) waitReady(t *testing.T, i, want int) string {
	t.Helper()
	var body string
	waitFor(t, fmt.Sprintf("readyz %d on instance %d", want, i), func() bool {
		var status int
		status, body = c.readyz(t, i)
		return status == want
	})
	return body
}

// subscribe makes tab follow a conversation and returns the frames up to its ack.
func subscribe(cl *client, convID string) []frame {
	cl.write(map[string]any{"type": "subscribe", "id": "sub", "conversationId": convID})
	return cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"sub"` })
}
